-- name: create_conversation(model)$
-- Id of the new conversation.
INSERT INTO conversations (model)
VALUES (:model)
RETURNING id;

-- name: get_conversation(conversation_id)^
-- The conversation's id, start time and model; no row when it does not exist.
SELECT
    c.id,
    c.started_at,
    c.model
FROM conversations AS c
WHERE c.id = :conversation_id;

-- name: get_conversation_summary(conversation_id)^
-- The conversation as list_conversations shows it, without reading its
-- messages; no row when it does not exist.
SELECT
    c.id,
    c.started_at,
    c.model,
    c.message_count
FROM conversations AS c
WHERE c.id = :conversation_id;

-- name: list_conversations(limit)
-- The newest :limit conversations with their message counts, newest first;
-- ties on started_at are ordered by id, so that keyset paging is stable.
SELECT
    c.id,
    c.started_at,
    c.model,
    c.message_count
FROM conversations AS c
ORDER BY c.started_at DESC, c.id DESC
LIMIT :limit;

-- name: list_conversations_before(before_started_at, before_id, limit)
-- The next page of list_conversations: up to :limit conversations that sort
-- after the one given by its start time and id. Empty after the oldest.
SELECT
    c.id,
    c.started_at,
    c.model,
    c.message_count
FROM conversations AS c
WHERE (c.started_at, c.id) < (:before_started_at, :before_id)
ORDER BY c.started_at DESC, c.id DESC
LIMIT :limit;

-- name: delete_conversation(conversation_id)!
-- Number of conversations deleted, 0 or 1; their messages are deleted with them.
DELETE FROM conversations
WHERE id = :conversation_id;
