-- Ended turns that versions before session 35 left their paused state: the results of the calls
-- that ran before a pause, out of forgetting's reach (it reads transcripts, and a waiting turn's
-- paused state). A turn ends with its paused state dropped now (`memory/turns.py`), so this is
-- done once here; every start did it (a scan of `turns`: 1.7 s at 100,000 turns of 3 KB).
UPDATE turns SET paused_state = NULL
WHERE paused_state IS NOT NULL AND status NOT IN ('running', 'awaiting_approval');
