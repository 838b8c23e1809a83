-- The replaced facts compaction drew from a span of messages (`source_ref` 'messages:a-b'):
-- every turn asks which of its history's messages said one (R249), and without this index that
-- look-up read every memory of the chat for each message.
CREATE INDEX IF NOT EXISTS memories_replaced_spans ON memories (user_id)
WHERE superseded_at IS NOT NULL AND source_ref GLOB 'messages:[0-9]*-[0-9]*';
