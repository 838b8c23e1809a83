-- Outgoing messages keep when a send to the platform began, until its outcome is recorded: one
-- a crash cut short mid-send may have arrived, and is sent again saying it may be a repeat.
-- `may_repeat` stays set once a message was found so, for every later attempt to say it too.
ALTER TABLE messages ADD COLUMN sending_since TEXT;
ALTER TABLE messages ADD COLUMN may_repeat INTEGER NOT NULL DEFAULT 0;
-- An outgoing message the code before this left `pending` may have been in flight at a kill
-- (that code noted no send before the platform call): once sent again, it says it may be a
-- repeat (review 89). One never tried gets the note as well: that cannot be told apart.
UPDATE messages SET may_repeat = 1 WHERE direction = 'out' AND status = 'pending';
