-- E-mail (issue 15): the owner's watch rules, how far the watcher has read each folder (by
-- UIDVALIDITY and UID, so a restart neither repeats nor drops a notice), the notices made,
-- and whether the morning briefing includes the inbox.

CREATE TABLE mail_watch_rules (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    kind         TEXT    NOT NULL CHECK (kind IN ('from', 'subject', 'unread_older')),
    value        TEXT    NOT NULL DEFAULT '',
    chat_id      INTEGER REFERENCES chats(id),
    destination  TEXT,                     -- where notices go: the chat the rule was made in
    created_at   TEXT    NOT NULL,
    removed_at   TEXT
);
CREATE INDEX mail_watch_rules_by_user ON mail_watch_rules (user_id, removed_at);

-- The newest UID the watcher has handled per folder; a new UIDVALIDITY starts the folder over.
CREATE TABLE mail_folders (
    folder       TEXT    PRIMARY KEY,
    uidvalidity  INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL,
    checked_at   TEXT    NOT NULL
);

-- One notice per message and reason ('new': a rule matched on arrival; 'unread': still unread
-- a day later). The unique key is what makes a notice happen once; `schedule_id` is set once
-- the notice is queued, so one left unqueued by a crash is queued at the next start.
CREATE TABLE mail_notices (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    folder       TEXT    NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    reason       TEXT    NOT NULL CHECK (reason IN ('new', 'unread')),
    rule_id      INTEGER,
    text         TEXT    NOT NULL,
    sender       TEXT    NOT NULL DEFAULT '',
    schedule_id  INTEGER,
    created_at   TEXT    NOT NULL,
    UNIQUE (user_id, folder, uidvalidity, uid, reason)
);

CREATE TABLE mail_prefs (
    user_id        INTEGER PRIMARY KEY REFERENCES users(id),
    briefing       INTEGER NOT NULL DEFAULT 0,
    briefed_until  TEXT
);

-- Memories may come from mail (source 'mail', always untrusted). Widening a CHECK constraint
-- changes no stored row, so the table's schema text is edited in place (the procedure in
-- sqlite.org/lang_altertable.html, section 7) instead of rebuilding the table again.
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql, '''feed'', ''tool''', '''feed'', ''tool'', ''mail''')
WHERE type = 'table' AND name = 'memories' AND sql NOT LIKE '%''mail''%';
PRAGMA writable_schema = RESET;
