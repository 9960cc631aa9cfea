-- 003_message_counts.sql: keep conversations.message_count equal to the number
-- of messages, so that listing conversations never counts messages. Needs 002.
-- Safe to re-run.

-- One statement-level function for every trigger below: it adds the rows a
-- statement inserted and subtracts the rows it deleted, with one UPDATE by
-- primary key per conversation touched rather than one per message.
-- PL/pgSQL keeps each statement's plan for the whole session. A single
-- UPDATE ... FROM the transition table, planned on a session's first insert
-- of many rows, could keep a sequential scan of conversations for every later
-- insert; an UPDATE comparing id with a variable is always an index scan.
CREATE OR REPLACE FUNCTION messages_update_message_count()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    counted record;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE conversations SET message_count = 0 WHERE message_count <> 0;
        RETURN NULL;
    END IF;

    -- In id order, so that concurrent statements lock conversations in the
    -- same order.
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        FOR counted IN
            SELECT n.conversation_id, count(*) AS message_count
            FROM new_messages AS n
            GROUP BY n.conversation_id
            ORDER BY n.conversation_id
        LOOP
            UPDATE conversations AS c
            SET message_count = c.message_count + counted.message_count
            WHERE c.id = counted.conversation_id;
        END LOOP;
    END IF;

    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        FOR counted IN
            SELECT o.conversation_id, count(*) AS message_count
            FROM old_messages AS o
            GROUP BY o.conversation_id
            ORDER BY o.conversation_id
        LOOP
            UPDATE conversations AS c
            SET message_count = c.message_count - counted.message_count
            WHERE c.id = counted.conversation_id;
        END LOOP;
    END IF;

    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER messages_count_insert_trg
    AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_update_message_count();

CREATE OR REPLACE TRIGGER messages_count_update_trg
    AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_messages NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_update_message_count();

CREATE OR REPLACE TRIGGER messages_count_delete_trg
    AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_update_message_count();

CREATE OR REPLACE TRIGGER messages_count_truncate_trg
    AFTER TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_update_message_count();

-- Messages stored before this script ran are counted once here; on a re-run
-- every count is already right and no row changes.
UPDATE conversations AS c
SET message_count = counted.message_count
FROM (
    SELECT
        m.conversation_id,
        count(*) AS message_count
    FROM messages AS m
    GROUP BY m.conversation_id
) AS counted
WHERE c.id = counted.conversation_id
    AND c.message_count <> counted.message_count;

COMMENT ON FUNCTION messages_update_message_count() IS
    'Trigger function that keeps conversations.message_count in step with messages.';
