-- Recall marks a past message whose exchange saved a memory since corrected (R95, R98): from
-- the messages a turn recalls to the turns they belong to, and to the replaced memories those
-- turns made. Both indexes are partial: only chat turns that answer a message, and only
-- replaced memories, so they cost almost nothing to keep.
CREATE INDEX turns_by_message ON turns (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX memories_replaced_by_turn ON memories (turn_id) WHERE superseded_at IS NOT NULL;
