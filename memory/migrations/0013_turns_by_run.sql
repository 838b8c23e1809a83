-- Which schedule run a job's turn is for. Recovery after a crash settles a run whose turn had
-- begun to act (it is not run again); found by the chat and the kind alone, a task's turn was
-- taken for another task's of the same chat, and a run that never reached the model was lost.
ALTER TABLE turns ADD COLUMN run_id INTEGER;
CREATE INDEX turns_by_run ON turns (run_id) WHERE run_id IS NOT NULL;
