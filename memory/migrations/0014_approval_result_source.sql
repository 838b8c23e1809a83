-- Where an approved call's result came from when it is outside content (a URL, a file, a
-- server), so a resumed turn takes its trust from data, not from the text the result was
-- fenced in. Results stored fenced before this column existed are marked from their fence.
ALTER TABLE approvals ADD COLUMN result_source TEXT;
UPDATE approvals SET result_source = tool || ' result'
WHERE result_source IS NULL AND result LIKE '<untrusted id=%';
