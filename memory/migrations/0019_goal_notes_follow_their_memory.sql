-- A goal's progress note follows the memory it was also saved as: forgetting or correcting that
-- memory forgets or corrects the note. Before, the goal's log kept the old words, shown by /goal
-- show, in every turn's context and in check-ins. The note names its memory; the triggers keep
-- the two in step in the same transaction as the delete or the correction (whoever makes it:
-- /memory, the console, a tool, an import). Notes written before this migration name none (they
-- are never matched by their text).
ALTER TABLE goal_notes ADD COLUMN memory_id INTEGER;

CREATE INDEX goal_notes_by_memory ON goal_notes (memory_id) WHERE memory_id IS NOT NULL;

-- The memory forgotten: the note goes with it.
CREATE TRIGGER goal_notes_forgotten AFTER DELETE ON memories
BEGIN
    DELETE FROM goal_notes WHERE memory_id = old.id;
END;

-- The memory corrected (replaced by another progress note: /memory correct keeps the kind):
-- the note follows the replacement and takes its words; replaced by outside content, the goal
-- is marked tainted (it is shown on every turn).
CREATE TRIGGER goal_notes_corrected AFTER UPDATE OF superseded_by ON memories
WHEN new.superseded_by IS NOT NULL AND new.superseded_by IS NOT old.superseded_by
    AND EXISTS (SELECT 1 FROM memories WHERE id = new.superseded_by AND kind = 'goal_note')
BEGIN
    UPDATE goals SET tainted = 1
    WHERE id IN (SELECT goal_id FROM goal_notes WHERE memory_id = old.id)
      AND (SELECT trust FROM memories WHERE id = new.superseded_by) != 'trusted';
    -- the same words noted twice are one memory: a correction is of the newest note, the
    -- older ones keep their words and let go of it
    UPDATE goal_notes SET memory_id = NULL
    WHERE memory_id = old.id
      AND id < (SELECT MAX(id) FROM goal_notes WHERE memory_id = old.id);
    UPDATE goal_notes
    SET memory_id = new.superseded_by,
        note = (SELECT text FROM memories WHERE id = new.superseded_by)
    WHERE memory_id = old.id;
END;

-- The memory replaced by anything else (a fact that names it in `replaces`, "my knee is sore
-- since I ran 5 km"): that is no correction of the progress made; the note keeps its words
-- and lets go of the memory.
CREATE TRIGGER goal_notes_let_go AFTER UPDATE OF superseded_by ON memories
WHEN new.superseded_by IS NOT NULL AND new.superseded_by IS NOT old.superseded_by
    AND NOT EXISTS (SELECT 1 FROM memories WHERE id = new.superseded_by AND kind = 'goal_note')
BEGIN
    UPDATE goal_notes SET memory_id = NULL WHERE memory_id = old.id;
END;
