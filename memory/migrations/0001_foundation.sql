-- Foundation schema: identities, chats, the message log, agent turns, goals, schedules, approvals
-- and the audit chain. Timestamps are ISO-8601 UTC strings (sortable as text).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    display_name  TEXT    NOT NULL DEFAULT '',
    is_owner      INTEGER NOT NULL DEFAULT 0,
    timezone      TEXT,
    profile       TEXT    NOT NULL DEFAULT '',
    created_at    TEXT    NOT NULL
);

CREATE TABLE identities (
    channel           TEXT    NOT NULL,
    platform_user_id  TEXT    NOT NULL,
    user_id           INTEGER NOT NULL REFERENCES users(id),
    status            TEXT    NOT NULL DEFAULT 'allowed' CHECK (status IN ('allowed', 'revoked')),
    created_at        TEXT    NOT NULL,
    PRIMARY KEY (channel, platform_user_id)
);

CREATE TABLE strangers (
    channel           TEXT NOT NULL,
    platform_user_id  TEXT NOT NULL,
    display_name      TEXT NOT NULL DEFAULT '',
    first_seen        TEXT NOT NULL,
    last_seen         TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (channel, platform_user_id)
);

CREATE TABLE chats (
    id                INTEGER PRIMARY KEY,
    channel           TEXT NOT NULL,
    platform_chat_id  TEXT NOT NULL,
    kind              TEXT NOT NULL DEFAULT 'private',
    title             TEXT NOT NULL DEFAULT '',
    created_at        TEXT NOT NULL,
    UNIQUE (channel, platform_chat_id)
);

CREATE TABLE messages (
    id                   INTEGER PRIMARY KEY,
    chat_id              INTEGER NOT NULL REFERENCES chats(id),
    user_id              INTEGER REFERENCES users(id),
    direction            TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    thread_id            TEXT,
    platform_message_id  TEXT,
    text                 TEXT    NOT NULL,
    status               TEXT    NOT NULL,
    turn_id              INTEGER,
    in_history           INTEGER NOT NULL DEFAULT 1,
    attempts             INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    created_at           TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL
);
CREATE UNIQUE INDEX messages_dedupe
    ON messages (chat_id, platform_message_id) WHERE direction = 'in' AND platform_message_id IS NOT NULL;
CREATE INDEX messages_by_chat ON messages (chat_id, id);
CREATE INDEX messages_by_status ON messages (direction, status);

CREATE TABLE turns (
    id                           INTEGER PRIMARY KEY,
    chat_id                      INTEGER REFERENCES chats(id),
    user_id                      INTEGER REFERENCES users(id),
    message_id                   INTEGER REFERENCES messages(id),
    kind                         TEXT    NOT NULL,
    status                       TEXT    NOT NULL,
    model                        TEXT    NOT NULL DEFAULT '',
    steps                        INTEGER NOT NULL DEFAULT 0,
    input_tokens                 INTEGER NOT NULL DEFAULT 0,
    output_tokens                INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd                     REAL    NOT NULL DEFAULT 0,
    tainted                      INTEGER NOT NULL DEFAULT 0,
    transcript                   TEXT,
    error                        TEXT,
    started_at                   TEXT    NOT NULL,
    finished_at                  TEXT
);
CREATE INDEX turns_by_start ON turns (started_at);
CREATE INDEX turns_by_status ON turns (status);

CREATE TABLE goals (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    title       TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'done', 'dropped')),
    next_step   TEXT    NOT NULL DEFAULT '',
    cadence     TEXT,
    due_at      TEXT,
    tainted     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE TABLE goal_notes (
    id          INTEGER PRIMARY KEY,
    goal_id     INTEGER NOT NULL REFERENCES goals(id),
    note        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
);

CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    chat_id      INTEGER REFERENCES chats(id),
    kind         TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,
    payload      TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL DEFAULT 'active',
    next_run_at  TEXT,
    tainted      INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT    NOT NULL
);

CREATE TABLE approvals (
    id           TEXT    PRIMARY KEY,
    turn_id      INTEGER REFERENCES turns(id),
    user_id      INTEGER REFERENCES users(id),
    chat_id      INTEGER REFERENCES chats(id),
    tool         TEXT    NOT NULL,
    arguments    TEXT    NOT NULL,
    action_hash  TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending',
    requested_at TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    decided_by   TEXT,
    decided_at   TEXT
);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

CREATE TABLE state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
