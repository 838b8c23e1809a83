-- A message a scheduled job sent without a turn (a reminder, a briefing with nothing new)
-- names its schedule: copies of one schedule's message queued through an outage go out once,
-- while two schedules that happen to say the same words both go out.
ALTER TABLE messages ADD COLUMN schedule_id INTEGER;
