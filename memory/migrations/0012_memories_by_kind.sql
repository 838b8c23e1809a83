-- A search filtered by kind (the transcript search, kind 'message', runs on every turn) asks for
-- the ids of the user's memories in force with vectors of those kinds (lookups.filtered_ids).
-- With only memories_by_user, SQLite walked every memory in force of the user to find the few
-- of that kind: 28 ms a call at 100,000 memories, six calls a turn (issue 19). This index holds
-- the same condition the look-up names, so SQLite seeks straight to the kind (and time range).
CREATE INDEX memories_by_kind ON memories (user_id, kind, created_at)
    WHERE superseded_at IS NULL AND indexed = 1;
