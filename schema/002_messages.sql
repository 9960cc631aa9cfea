-- 002_messages.sql: the messages of each conversation. Needs 001. Safe to re-run.
CREATE TABLE IF NOT EXISTS messages (
    id              uuid        DEFAULT gen_random_uuid(),
    conversation_id uuid        NOT NULL,
    role            text        NOT NULL,
    content         text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant', 'system'))
);

-- Reads a conversation's messages in the order they were added, and finds the
-- rows that ON DELETE CASCADE removes.
CREATE INDEX IF NOT EXISTS messages_conversation_id_seq_idx
    ON messages (conversation_id, seq);

COMMENT ON TABLE messages IS
    'One message of a conversation, as sent by the user, the model or the system.';
COMMENT ON COLUMN messages.seq IS
    'Insertion order. created_at is the transaction start time, so messages added '
    'in one transaction share it; seq keeps them in the order they were added.';
