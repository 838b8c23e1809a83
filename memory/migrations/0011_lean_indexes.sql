-- Disk per turn (issue 19): the three indexes that only the look-ups of memories use (same text,
-- same subject, the most important) leave out transcript rows (kind 'message'), two of which
-- every turn adds; the look-ups name the same condition, so SQLite still uses them. Every row
-- is kept: only the indexes are rebuilt.

DROP INDEX memories_by_subject;
CREATE INDEX memories_by_subject ON memories (user_id, subject_key)
    WHERE subject_key != '' AND superseded_at IS NULL AND kind != 'message';

DROP INDEX memories_by_text;
CREATE INDEX memories_by_text ON memories (user_id, text COLLATE NOCASE)
    WHERE superseded_at IS NULL AND kind != 'message';

DROP INDEX memories_by_importance;
CREATE INDEX memories_by_importance ON memories (user_id, importance)
    WHERE superseded_at IS NULL AND kind != 'message';
