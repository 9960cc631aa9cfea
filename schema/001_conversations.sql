-- 001_conversations.sql: one row per chat conversation. Safe to re-run.
CREATE TABLE IF NOT EXISTS conversations (
    id            uuid        DEFAULT gen_random_uuid(),
    started_at    timestamptz NOT NULL DEFAULT now(),
    model         text        NOT NULL DEFAULT '',
    message_count bigint      NOT NULL DEFAULT 0,
    CONSTRAINT conversations_pkey PRIMARY KEY (id),
    CONSTRAINT conversations_message_count_check CHECK (message_count >= 0)
);

-- Serves the newest-first listing and its keyset paging on (started_at, id).
CREATE INDEX IF NOT EXISTS conversations_started_at_id_idx
    ON conversations (started_at, id);

COMMENT ON TABLE conversations IS
    'One chat conversation with an LLM; its messages live in messages.';
COMMENT ON COLUMN conversations.model IS
    'Name of the model that answered, empty when unknown.';
COMMENT ON COLUMN conversations.message_count IS
    'Number of rows in messages for this conversation, kept by triggers on messages.';
