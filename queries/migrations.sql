-- name: lock_migrations()$
-- Blocks until this session holds the schema runner's advisory lock, so that
-- processes starting at once apply the schema one after another.
-- The key is an arbitrary constant reserved for hwlab_sql's schema runner.
SELECT pg_advisory_lock(4871203345096611);

-- name: unlock_migrations()$
-- True when this session held the schema runner's advisory lock and released it.
SELECT pg_advisory_unlock(4871203345096611);

-- name: create_ledger#
-- Creates the ledger of applied schema scripts when it is missing.
CREATE TABLE IF NOT EXISTS hwlab_sql_migrations (
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hwlab_sql_migrations_pkey PRIMARY KEY (version)
);

-- name: ledger_exists()$
-- True when the ledger of applied schema scripts exists on the search path.
SELECT to_regclass('hwlab_sql_migrations') IS NOT NULL;

-- name: list_applied_scripts()
-- Every applied schema script with its SHA-256 checksum and time, oldest first.
SELECT
    l.version,
    l.name,
    l.checksum,
    l.applied_at
FROM hwlab_sql_migrations AS l
ORDER BY l.version;

-- name: record_script(version, name, checksum)!
-- Records one schema script as applied; 1 row.
INSERT INTO hwlab_sql_migrations (version, name, checksum)
VALUES (:version, :name, :checksum);
