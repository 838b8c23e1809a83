-- The turn a reminder, task or goal was made in (its `reminder_add`, `task_add` or `goal_add`
-- call; NULL when made by a command or before this): forgetting an exchange reaches what it set
-- up (review 36: a reminder set in the exchange a secret was pasted in sent the secret again
-- once it was forgotten).
ALTER TABLE schedules ADD COLUMN made_in_turn INTEGER;
ALTER TABLE goals ADD COLUMN made_in_turn INTEGER;
CREATE INDEX IF NOT EXISTS schedules_made_in_turn ON schedules (made_in_turn)
WHERE made_in_turn IS NOT NULL;
CREATE INDEX IF NOT EXISTS goals_made_in_turn ON goals (made_in_turn)
WHERE made_in_turn IS NOT NULL;
