-- Outgoing messages keep when a send to the platform began, until its outcome is recorded: one
-- a crash cut short mid-send may have arrived, and is sent again saying it may be a repeat.
-- `may_repeat` stays set once a message was found so, for every later attempt to say it too.
ALTER TABLE messages ADD COLUMN sending_since TEXT;
ALTER TABLE messages ADD COLUMN may_repeat INTEGER NOT NULL DEFAULT 0;
