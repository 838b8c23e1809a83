-- Trust: approvals become deferred tool calls that survive a restart, and a paused turn keeps
-- the results of the step's other tool calls until every approval of that step is decided.
ALTER TABLE approvals ADD COLUMN tool_use_id TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN risk TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN preview TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN tainted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN channel TEXT;
ALTER TABLE approvals ADD COLUMN platform_chat_id TEXT;
ALTER TABLE approvals ADD COLUMN thread_id TEXT;
ALTER TABLE approvals ADD COLUMN prompt_message_id TEXT;
ALTER TABLE approvals ADD COLUMN result TEXT;
ALTER TABLE approvals ADD COLUMN result_is_error INTEGER NOT NULL DEFAULT 0;
CREATE INDEX approvals_by_turn ON approvals (turn_id);
CREATE INDEX approvals_by_status ON approvals (status, expires_at);
ALTER TABLE turns ADD COLUMN paused_state TEXT;
