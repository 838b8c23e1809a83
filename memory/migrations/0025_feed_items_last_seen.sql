-- Feed items were kept for ever (R126: a hostile feed added 40,000 rows a briefing). Each item
-- now records when its feed last served it; one no feed has served for FEED_ITEM_KEEP is dropped
-- (it cannot come back as new unless its feed serves it again, and what was briefed stays in
-- `briefed_items`, so it is never briefed twice).
ALTER TABLE feed_items ADD COLUMN last_seen_at TEXT;
UPDATE feed_items SET last_seen_at = first_seen_at;
CREATE INDEX feed_items_last_seen ON feed_items (feed_id, last_seen_at);
