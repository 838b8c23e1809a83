-- Which memories' vectors Chroma is known to hold, and which vectors still have to leave it, so
-- start-up reconciles only what changed instead of listing every id Chroma holds (which took
-- minutes at 100,000 memories). Rows written before this migration start unindexed; the first
-- start compares them with Chroma once and marks them.

ALTER TABLE memories ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;

CREATE INDEX memories_unindexed ON memories (user_id) WHERE indexed = 0 AND superseded_at IS NULL;

-- Written by triggers in the same transaction as the delete or the supersession, so no crash
-- can lose a pending removal; cleared once Chroma has dropped the vector.
CREATE TABLE memory_vector_removals (
    memory_id INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL
);

CREATE TRIGGER memories_vector_forgotten AFTER DELETE ON memories
BEGIN
    INSERT OR IGNORE INTO memory_vector_removals (memory_id, user_id)
    VALUES (old.id, old.user_id);
END;

CREATE TRIGGER memories_vector_retired AFTER UPDATE OF superseded_at ON memories
WHEN old.superseded_at IS NULL AND new.superseded_at IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO memory_vector_removals (memory_id, user_id)
    VALUES (old.id, old.user_id);
END;

-- SQLite may reuse the id of a forgotten last row: the new memory's vector replaces the old one.
CREATE TRIGGER memories_vector_reused AFTER INSERT ON memories
BEGIN
    DELETE FROM memory_vector_removals WHERE memory_id = new.id;
END;
