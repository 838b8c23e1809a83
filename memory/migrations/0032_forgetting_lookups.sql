-- what a schedule sent without a turn (a reminder's message), which forgetting reaches with it
CREATE INDEX IF NOT EXISTS messages_by_schedule ON messages (schedule_id)
WHERE schedule_id IS NOT NULL;
-- a person's messages longer than a transcript row keeps (4,000 characters: MAX_TEXT_CHARS), whose
-- rest `/memory search` reads as typed: a look-up of a few rows, not a walk of every message
CREATE INDEX IF NOT EXISTS memories_long_messages ON memories (user_id)
WHERE kind = 'message' AND length(text) >= 4000;
