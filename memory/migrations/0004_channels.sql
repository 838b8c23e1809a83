-- Channels (issue 3): one-time codes that link a person's identities across channels
-- (`/link` shows a code in one channel; entering it in another makes both one user).
CREATE TABLE link_codes (
    code              TEXT    PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES users(id),
    channel           TEXT    NOT NULL,
    platform_user_id  TEXT    NOT NULL,
    created_at        TEXT    NOT NULL,
    expires_at        TEXT    NOT NULL,
    used_at           TEXT,
    used_by           TEXT
);
CREATE INDEX link_codes_by_identity ON link_codes (channel, platform_user_id);
