-- The replaced facts compaction drew from a span of messages (`source_ref` 'messages:a-b'), by
-- where their span ends: every turn asks which of its history's messages said one (R249), and
-- the history lies after every compacted span, so the look-up reads none of them. Without it,
-- it read every memory of the chat for each message.
CREATE INDEX IF NOT EXISTS memories_replaced_spans
ON memories (user_id, CAST(substr(source_ref, instr(source_ref, '-') + 1) AS INTEGER))
WHERE superseded_at IS NOT NULL AND source_ref GLOB 'messages:[0-9]*-[0-9]*';
