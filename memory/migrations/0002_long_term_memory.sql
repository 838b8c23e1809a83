-- Long-term memory (issue 4): memory records with their provenance, an FTS5 index over the ones
-- still in force, and the compaction marks saying which part of a chat an episode replaced.
-- SQLite is the source of truth; Chroma holds only vectors keyed by memory id (rebuilt from here).

CREATE TABLE memories (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id),
    chat_id        INTEGER REFERENCES chats(id),
    kind           TEXT    NOT NULL CHECK (kind IN
                       ('fact', 'preference', 'episode', 'goal_note', 'briefing', 'note')),
    text           TEXT    NOT NULL CHECK (length(text) > 0),
    subject        TEXT    NOT NULL DEFAULT '',
    subject_key    TEXT    NOT NULL DEFAULT '',  -- the subject lower-cased, punctuation dropped
    source         TEXT    NOT NULL CHECK (source IN
                       ('owner_said', 'user_said', 'model_inferred', 'web', 'feed', 'tool')),
    source_ref     TEXT    NOT NULL DEFAULT '',
    trust          TEXT    NOT NULL CHECK (trust IN ('trusted', 'untrusted')),
    importance     REAL    NOT NULL DEFAULT 0.5 CHECK (importance >= 0 AND importance <= 1),
    turn_id        INTEGER,
    created_at     TEXT    NOT NULL,
    -- A newer memory that replaced this one (kept for /memory show; no foreign key, so
    -- forgetting the newer one leaves this one retired rather than silently back in force).
    superseded_by  INTEGER,
    superseded_at  TEXT
);
CREATE INDEX memories_by_user ON memories (user_id, superseded_at, created_at);
CREATE INDEX memories_by_subject ON memories (user_id, subject_key)
    WHERE subject_key != '' AND superseded_at IS NULL;
CREATE INDEX memories_by_text ON memories (user_id, text COLLATE NOCASE)
    WHERE superseded_at IS NULL;
CREATE INDEX memories_by_importance ON memories (user_id, importance)
    WHERE superseded_at IS NULL;
CREATE INDEX memories_by_chat ON memories (chat_id, kind, id);

-- Keyword search over memories in force only (superseded ones leave the index).
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, subject, content = 'memories', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories
WHEN new.superseded_at IS NULL
BEGIN
    INSERT INTO memories_fts (rowid, text, subject) VALUES (new.id, new.text, new.subject);
END;

CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories
WHEN old.superseded_at IS NULL
BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, subject)
    VALUES ('delete', old.id, old.text, old.subject);
END;

CREATE TRIGGER memories_fts_retire AFTER UPDATE OF text, subject, superseded_at ON memories
WHEN old.superseded_at IS NULL
BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, subject)
    VALUES ('delete', old.id, old.text, old.subject);
END;

CREATE TRIGGER memories_fts_restore AFTER UPDATE OF text, subject, superseded_at ON memories
WHEN new.superseded_at IS NULL
BEGIN
    INSERT INTO memories_fts (rowid, text, subject) VALUES (new.id, new.text, new.subject);
END;

-- Which messages of a chat were summarised into an episode. The messages stay in `messages`;
-- the conversation sent to the model starts after `last_message_id`.
CREATE TABLE memory_compactions (
    id                INTEGER PRIMARY KEY,
    chat_id           INTEGER NOT NULL REFERENCES chats(id),
    first_message_id  INTEGER NOT NULL,
    last_message_id   INTEGER NOT NULL,
    episode_id        INTEGER,
    facts_saved       INTEGER NOT NULL DEFAULT 0,
    turn_id           INTEGER,
    created_at        TEXT    NOT NULL
);
CREATE INDEX memory_compactions_by_chat ON memory_compactions (chat_id, last_message_id);
