-- The owner's web console (issue 16): one-time login links, sessions, and model-call timings.
-- Only SHA-256 hashes of login tokens and session cookies are stored: a copy of steward.db
-- does not let anyone sign in.
CREATE TABLE web_logins (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    identity TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'approver')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    csrf TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    identity TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'approver')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX web_sessions_live ON web_sessions (ended_at, expires_at);

CREATE TABLE model_calls (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    model TEXT NOT NULL,
    latency_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX model_calls_at ON model_calls (at);
