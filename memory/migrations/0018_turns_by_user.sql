-- A person's conversation today, in tokens: checked before each of their turns against
-- STEWARD_GUEST_DAILY_TOKENS. By the start index alone it walked every turn of the day.
CREATE INDEX turns_by_user ON turns (user_id, started_at);
