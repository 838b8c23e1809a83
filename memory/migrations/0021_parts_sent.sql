-- How many parts of a long outgoing message are delivered (a long reply goes out in several):
-- a redelivery, after a restart too, resumes after them instead of sending them again.
ALTER TABLE messages ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;
