-- 004_message_counts_by_key.sql: keep conversations.message_count with one
-- UPDATE by primary key per conversation that a statement touched. Needs 003.
-- Safe to re-run.
--
-- 003 joined the transition table to conversations in a single UPDATE.
-- PL/pgSQL plans that UPDATE on its first run in a session and keeps the plan
-- until the session ends or conversations is analyzed. When the first run
-- came from an insert of many rows and conversations was small (2,000 rows
-- into 10,000 conversations), the kept plan was a sequential scan of
-- conversations, paid again by every later insert of the session. An UPDATE
-- that compares id with a variable is planned as an index scan on
-- conversations_pkey, whatever the size of the first statement.
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
