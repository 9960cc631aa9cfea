-- name: ping()$
-- The number 1, as proof that the server answers.
SELECT 1;
