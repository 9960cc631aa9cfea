-- name: add_message(conversation_id, role, content)$
-- Id of the new message; no row, and nothing stored, when the conversation
-- does not exist.
INSERT INTO messages (conversation_id, role, content)
SELECT
    c.id,
    :role,
    :content
FROM conversations AS c
WHERE c.id = :conversation_id
RETURNING id;

-- name: add_messages(conversation_id, roles, contents)
-- Ids of the new messages in the order of the two arrays, which pair up by
-- position. No rows, and nothing stored, when the conversation does not exist.
INSERT INTO messages (conversation_id, role, content)
SELECT
    c.id,
    m.role,
    m.content
FROM conversations AS c
CROSS JOIN
    unnest(:roles::text[], :contents::text[]) WITH ORDINALITY
        AS m (role, content, position)
WHERE c.id = :conversation_id
ORDER BY m.position
RETURNING id;

-- name: list_messages(conversation_id)
-- Messages of one conversation in the order they were added; empty when it
-- has none or does not exist.
SELECT
    m.id,
    m.conversation_id,
    m.role,
    m.content,
    m.created_at
FROM messages AS m
WHERE m.conversation_id = :conversation_id
ORDER BY m.seq;
