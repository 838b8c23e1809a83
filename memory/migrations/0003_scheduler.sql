-- The scheduler, reminders, goals and briefings (issue 5).
-- `schedules` (from 0001) is the source of truth for every job; APScheduler only wakes the
-- process at the next `next_run_at`. `trigger` and `payload` hold JSON. `destination` is the
-- address a job posts to, as JSON {"channel", "chat_id", "thread_id"}.
ALTER TABLE schedules ADD COLUMN destination TEXT;
ALTER TABLE schedules ADD COLUMN last_run_at TEXT;
ALTER TABLE schedules ADD COLUMN updated_at TEXT;
CREATE INDEX schedules_due ON schedules (status, next_run_at);
CREATE INDEX schedules_by_user ON schedules (user_id, kind, status);

-- One row per firing of a job. A run is `firing` from the moment it is claimed until what it
-- sent is recorded; a crash in between leaves it `firing`, and the next start-up checks the
-- message log before sending anything again.
CREATE TABLE schedule_runs (
    id            INTEGER PRIMARY KEY,
    schedule_id   INTEGER NOT NULL REFERENCES schedules(id),
    kind          TEXT    NOT NULL,
    due_at        TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT,
    status        TEXT    NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    late_seconds  INTEGER NOT NULL DEFAULT 0,
    text          TEXT,
    turn_id       INTEGER REFERENCES turns(id),
    detail        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX schedule_runs_by_schedule ON schedule_runs (schedule_id, id);
CREATE INDEX schedule_runs_by_status ON schedule_runs (status);

-- Per-user quiet hours (local wall-clock times, HH:MM); self-initiated messages wait them out.
CREATE TABLE quiet_hours (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id),
    start_time  TEXT NOT NULL,
    end_time    TEXT NOT NULL
);

CREATE INDEX goal_notes_by_goal ON goal_notes (goal_id, id);

-- Briefing feeds, with what the conditional GET needs and the last failure.
CREATE TABLE feeds (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users(id),
    url              TEXT    NOT NULL,
    title            TEXT    NOT NULL DEFAULT '',
    etag             TEXT,
    last_modified    TEXT,
    last_fetched_at  TEXT,
    last_status      TEXT,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    UNIQUE (user_id, url)
);

-- Items seen in feeds; `briefed_items` is the per-user ledger that keeps an item out of every
-- later briefing (keyed by the item's guid or link, so it survives a feed removed and re-added).
CREATE TABLE feed_items (
    id             INTEGER PRIMARY KEY,
    feed_id        INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    item_key       TEXT    NOT NULL,
    title          TEXT    NOT NULL,
    link           TEXT    NOT NULL DEFAULT '',
    summary        TEXT    NOT NULL DEFAULT '',
    published_at   TEXT,
    first_seen_at  TEXT    NOT NULL,
    UNIQUE (feed_id, item_key)
);
CREATE TABLE briefed_items (
    user_id     INTEGER NOT NULL REFERENCES users(id),
    item_key    TEXT    NOT NULL,
    briefed_at  TEXT    NOT NULL,
    PRIMARY KEY (user_id, item_key)
);

CREATE TABLE briefing_prefs (
    user_id      INTEGER PRIMARY KEY REFERENCES users(id),
    topics       TEXT NOT NULL DEFAULT '',
    destination  TEXT,
    updated_at   TEXT NOT NULL
);
