-- The files a message brought into the workspace's inbox/ (R171: forgetting the owner's voice
-- note left its recording and its transcript there, for a later turn to read back and backups
-- to keep). `words`: 1 for the sender's own words (their voice note and its transcript), which
-- go when the message is forgotten; other files are named in the forget's answer.
CREATE TABLE message_files (
    message_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    words INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, path)
);
