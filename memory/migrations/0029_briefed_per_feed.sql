-- What was briefed is recorded per feed, by the feed's address and the item's key (R255: two
-- feeds serving one guid shared one record, so a feed that copied another's item was briefed in
-- its place and kept the real one out of every later briefing). The address, not the feed's
-- row, keeps the record when the feed is removed and added again. Rows of `briefed_items`,
-- written before, still count for every feed of their user (as does a briefing recorded before
-- this and settled after, the one thing that writes there now).
CREATE TABLE IF NOT EXISTS briefed_feed_items (
    user_id     INTEGER NOT NULL REFERENCES users(id),
    feed_url    TEXT    NOT NULL,
    item_key    TEXT    NOT NULL,
    briefed_at  TEXT    NOT NULL,
    PRIMARY KEY (user_id, feed_url, item_key)
);
