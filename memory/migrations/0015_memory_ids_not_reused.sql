-- A forgotten memory's number is never given to another: SQLite hands out the highest id + 1,
-- so forgetting the newest memory gave its number to the next one, and what was shown as
-- replaced by the forgotten one ("superseded by #2") pointed at a memory saved later. New rows
-- take the next number above both the highest id in use and the highest ever forgotten.
CREATE TABLE memory_ids (floor INTEGER NOT NULL);
INSERT INTO memory_ids (floor) SELECT COALESCE(MAX(id), 0) FROM memories;
CREATE TRIGGER memories_keep_ids AFTER DELETE ON memories BEGIN
    UPDATE memory_ids SET floor = MAX(floor, old.id);
END;
