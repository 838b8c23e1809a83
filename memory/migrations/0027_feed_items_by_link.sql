-- Feed items are found by their link, title and date as well as their key (R209: a feed whose
-- guids changed on every fetch stored its items again each time, and each was briefed again
-- every morning). The index serves that look-up. An item stored again by a later fetch before
-- this is kept once, its oldest row, and counts as briefed if any of its copies was; two items
-- alike that one fetch stored together are two items (R210), and both stay.
CREATE INDEX IF NOT EXISTS feed_items_by_link ON feed_items (feed_id, link, title);
INSERT OR IGNORE INTO briefed_items (user_id, item_key, briefed_at)
SELECT b.user_id, kept.item_key, b.briefed_at
FROM feed_items AS kept
JOIN feed_items AS copy ON copy.feed_id = kept.feed_id AND copy.id != kept.id
    AND copy.link = kept.link AND copy.title = kept.title AND copy.published_at IS kept.published_at
    AND copy.first_seen_at != kept.first_seen_at
JOIN feeds ON feeds.id = kept.feed_id
JOIN briefed_items AS b ON b.user_id = feeds.user_id AND b.item_key = copy.item_key
WHERE kept.link != '' OR kept.published_at IS NOT NULL;
DELETE FROM feed_items
WHERE (link != '' OR published_at IS NOT NULL) AND EXISTS (
    SELECT 1 FROM feed_items AS older
    WHERE older.feed_id = feed_items.feed_id AND older.id < feed_items.id
        AND older.link = feed_items.link AND older.title = feed_items.title
        AND older.published_at IS feed_items.published_at
        AND older.first_seen_at != feed_items.first_seen_at
);
