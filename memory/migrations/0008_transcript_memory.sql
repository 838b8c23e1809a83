-- Memory that finds what was said (issue 13): the transcript is memory too. Every message can be
-- kept as a row of `memories` with kind 'message' (its chat, the message it came from, the
-- speaker as its subject), searched with the other memories by one ranking. The date words of
-- every row ("6 September 2025 September 2025 2025-09-06 Saturday") are indexed by FTS5 so a
-- question naming a day or a month matches what was said then.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt (ids kept, so the FTS5
-- index and the Chroma vectors keyed by id stay valid), with its indexes and triggers.

CREATE TABLE memories_new (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id),
    chat_id        INTEGER REFERENCES chats(id),
    kind           TEXT    NOT NULL CHECK (kind IN
                       ('fact', 'preference', 'episode', 'goal_note', 'briefing', 'note',
                        'message')),
    text           TEXT    NOT NULL CHECK (length(text) > 0),
    subject        TEXT    NOT NULL DEFAULT '',
    subject_key    TEXT    NOT NULL DEFAULT '',
    source         TEXT    NOT NULL CHECK (source IN
                       ('owner_said', 'user_said', 'model_inferred', 'web', 'feed', 'tool',
                        'steward_said')),
    source_ref     TEXT    NOT NULL DEFAULT '',
    trust          TEXT    NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    importance     REAL    NOT NULL DEFAULT 0.5 CHECK (importance >= 0 AND importance <= 1),
    turn_id        INTEGER,
    created_at     TEXT    NOT NULL,
    superseded_by  INTEGER,
    superseded_at  TEXT,
    indexed        INTEGER NOT NULL DEFAULT 0,
    label          TEXT    NOT NULL DEFAULT '[]',
    message_id     INTEGER,                      -- messages.id of a transcript row
    dates          TEXT    NOT NULL DEFAULT ''   -- date words of created_at, for FTS5
);

INSERT INTO memories_new (id, user_id, chat_id, kind, text, subject, subject_key, source,
    source_ref, trust, importance, turn_id, created_at, superseded_by, superseded_at, indexed,
    label, message_id, dates)
SELECT id, user_id, chat_id, kind, text, subject, subject_key, source, source_ref, trust,
    importance, turn_id, created_at, superseded_by, superseded_at, indexed, label, NULL,
    CAST(CAST(strftime('%d', created_at) AS INTEGER) AS TEXT) || ' '
    || CASE strftime('%m', created_at)
        WHEN '01' THEN 'January' WHEN '02' THEN 'February' WHEN '03' THEN 'March'
        WHEN '04' THEN 'April' WHEN '05' THEN 'May' WHEN '06' THEN 'June'
        WHEN '07' THEN 'July' WHEN '08' THEN 'August' WHEN '09' THEN 'September'
        WHEN '10' THEN 'October' WHEN '11' THEN 'November' ELSE 'December' END
    || ' ' || strftime('%Y', created_at) || ' ' || strftime('%Y-%m-%d', created_at) || ' '
    || CASE strftime('%w', created_at)
        WHEN '0' THEN 'Sunday' WHEN '1' THEN 'Monday' WHEN '2' THEN 'Tuesday'
        WHEN '3' THEN 'Wednesday' WHEN '4' THEN 'Thursday' WHEN '5' THEN 'Friday'
        ELSE 'Saturday' END
FROM memories;

DROP TABLE memories_fts;
DROP TABLE memories;
ALTER TABLE memories_new RENAME TO memories;

CREATE INDEX memories_by_user ON memories (user_id, superseded_at, created_at);
CREATE INDEX memories_by_subject ON memories (user_id, subject_key)
    WHERE subject_key != '' AND superseded_at IS NULL;
CREATE INDEX memories_by_text ON memories (user_id, text COLLATE NOCASE)
    WHERE superseded_at IS NULL;
CREATE INDEX memories_by_importance ON memories (user_id, importance)
    WHERE superseded_at IS NULL;
CREATE INDEX memories_by_chat ON memories (chat_id, kind, id);
CREATE INDEX memories_unindexed ON memories (user_id) WHERE indexed = 0 AND superseded_at IS NULL;
-- One transcript row per message and user: saving a message again is skipped, not doubled.
CREATE UNIQUE INDEX memories_by_message ON memories (user_id, message_id)
    WHERE message_id IS NOT NULL;
-- Who has written in a chat (the members a group message is kept for).
CREATE INDEX messages_by_chat_author ON messages (chat_id, user_id) WHERE direction = 'in';

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, subject, dates, content = 'memories', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');
-- 'rebuild' indexes every row; retired ones leave the index again.
INSERT INTO memories_fts (memories_fts, rowid, text, subject, dates)
    SELECT 'delete', id, text, subject, dates FROM memories WHERE superseded_at IS NOT NULL;

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories
WHEN new.superseded_at IS NULL
BEGIN
    INSERT INTO memories_fts (rowid, text, subject, dates)
    VALUES (new.id, new.text, new.subject, new.dates);
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories
WHEN old.superseded_at IS NULL
BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, subject, dates)
    VALUES ('delete', old.id, old.text, old.subject, old.dates);
END;

-- One trigger for every update, deleting the old entry before adding the new one (two triggers
-- would run in reverse order of creation, adding a row the index already holds).
CREATE TRIGGER memories_fts_update AFTER UPDATE OF text, subject, dates, superseded_at ON memories
BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, subject, dates)
    SELECT 'delete', old.id, old.text, old.subject, old.dates WHERE old.superseded_at IS NULL;
    INSERT INTO memories_fts (rowid, text, subject, dates)
    SELECT new.id, new.text, new.subject, new.dates WHERE new.superseded_at IS NULL;
END;

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

CREATE TRIGGER memories_vector_reused AFTER INSERT ON memories
BEGIN
    DELETE FROM memory_vector_removals WHERE memory_id = new.id;
END;
