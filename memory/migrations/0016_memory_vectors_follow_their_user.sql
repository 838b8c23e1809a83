-- Vectors live in one Chroma collection per user. A memory moved to another user (an account
-- linked to it) kept its vector in the old user's collection: found by words at once, by
-- meaning only after a restart rebuilt it. Moving a memory now owes its vector again (under
-- its new user) and queues the old one's removal.
CREATE TRIGGER memories_vector_moved AFTER UPDATE OF user_id ON memories
WHEN old.user_id != new.user_id
BEGIN
    INSERT OR IGNORE INTO memory_vector_removals (memory_id, user_id)
    VALUES (old.id, old.user_id);
    UPDATE memories SET indexed = 0 WHERE id = new.id;
END;
