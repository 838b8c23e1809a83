-- A date more than 100 years ahead is refused now (R121): 9999-12-31 had been taken, and in a
-- time zone east of UTC its local date is year 10000, which Python cannot hold: every turn,
-- /timezone and /goal list of that person failed. One stored before the cap loses the date
-- (a goal keeps its title, a reminder that far ahead is cancelled).
UPDATE goals SET due_at = NULL WHERE due_at >= '2200';
UPDATE schedules SET status = 'cancelled', next_run_at = NULL
WHERE next_run_at >= '2200' AND status = 'active';
