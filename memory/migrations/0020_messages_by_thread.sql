-- A Slack channel's turn reads its thread's history (agent/context.py): without this index a
-- thread not in the in-memory window walked the channel's messages newest first (~14 ms in a
-- channel of 50,000), on every new mention at the top of the channel.
CREATE INDEX messages_by_thread ON messages (chat_id, thread_id, id);
