-- Trust labels as data: every stored message and turn carries its label (a JSON list of the
-- outside sources it holds; '[]' is trusted). Memories, goals and schedules keep their
-- trust/tainted columns and gain the sources. Rows written before this migration get the
-- most cautious label their old columns allow.
ALTER TABLE messages ADD COLUMN label TEXT NOT NULL DEFAULT '[]';
ALTER TABLE turns ADD COLUMN label TEXT NOT NULL DEFAULT '[]';
ALTER TABLE memories ADD COLUMN label TEXT NOT NULL DEFAULT '[]';
ALTER TABLE goals ADD COLUMN label TEXT NOT NULL DEFAULT '[]';
ALTER TABLE schedules ADD COLUMN label TEXT NOT NULL DEFAULT '[]';

UPDATE turns SET label = '["outside content (before labels)"]' WHERE tainted = 1;
-- Steward's replies from turns that held outside content, and other people's messages.
UPDATE messages SET label = '["outside content (before labels)"]'
    WHERE direction = 'out' AND turn_id IN (SELECT id FROM turns WHERE tainted = 1);
UPDATE messages SET label = '["another person''s message"]'
    WHERE direction = 'in' AND user_id IS NOT NULL
      AND user_id NOT IN (SELECT id FROM users WHERE is_owner = 1);
UPDATE memories SET label = '["' || source || '"]' WHERE trust = 'untrusted';
UPDATE goals SET label = '["outside content (before labels)"]' WHERE tainted = 1;
UPDATE schedules SET label = '["outside content (before labels)"]' WHERE tainted = 1;
-- Reminders a planted (tainted) job already posted: they carry no turn, so match their text.
UPDATE messages SET label = '["outside content (before labels)"]'
    WHERE direction = 'out' AND label = '[]' AND turn_id IS NULL
      AND text IN (SELECT r.text FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id
                   WHERE s.tainted = 1 AND r.text IS NOT NULL);
