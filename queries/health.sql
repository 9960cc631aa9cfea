-- name: ping()$
-- The number 1, as proof that the server responds.
SELECT 1;
