"""Forgetting as the owner means it: the memory, and the words it came from.

Deleting the one memory row left the fact where it was said. The message that stated it was
still a searchable transcript row, still read back as a neighbour of other results, still in
the chat history the model sees and in the text compaction summarises; months later it came
back as an "earlier message". So a memory forgotten takes with it the exchange it came from
(its turn: the person's message that set it off and what Steward answered in that chat), and
a transcript row forgotten takes its message: the stored text becomes a placeholder everywhere
it is read, the transcript rows of it (every member's, in a group) and their vectors go, the
turn's own transcript is dropped, and earlier command answers that quoted the memory (a
`/memory search`) lose its text. Only a person's own exchanges: a member forgetting a message
someone else wrote in a group loses their copy of it, not everyone's; what a turn sent to other
chats stays theirs. An exchange still going on (a turn running, or waiting for an approval,
would write its transcript back when it ends) is not forgotten until it is over.
"""

from __future__ import annotations

from dataclasses import dataclass

from memory.longterm import Kind, LongTermMemory, Memory
from memory.messages import MessageLog, StoredMessage
from memory.turns import TurnLog, TurnStatus

__all__ = ["FORGOTTEN", "Forgetting", "Forgotten"]

FORGOTTEN = "(forgotten on request)"
"""What a forgotten message's text becomes: the history keeps its place, not its words."""

_UNDERWAY = {TurnStatus.RUNNING.value, TurnStatus.AWAITING_APPROVAL.value}


@dataclass(frozen=True)
class Forgotten:
    memory: Memory
    messages: int = 0
    """Messages of the conversation forgotten with it."""
    underway: int | None = None
    """The turn it came from is still going on: nothing was forgotten (ask again after)."""
    summaries: tuple[int, ...] = ()
    """It was drawn from a summary of earlier conversation (compaction): that summary, which
    may say it too, and whose messages are kept. Named for the owner to forget as well."""


class Forgetting:
    def __init__(self, store: LongTermMemory, messages: MessageLog, turns: TurnLog) -> None:
        self._store = store
        self._messages = messages
        self._turns = turns

    async def forget(self, user_id: int, memory_id: int) -> Forgotten | None:
        """None when the user has no such memory."""
        memory = await self._store.get(user_id, memory_id)
        if memory is None:
            return None
        said: list[StoredMessage] = []
        if memory.kind is Kind.MESSAGE and memory.message_id is not None:
            message = await self._messages.get(memory.message_id)
            if message is not None and await self._theirs(message, user_id):
                if await self._underway(message.turn_id):
                    return Forgotten(memory, underway=message.turn_id)
                said.append(message)
        elif memory.turn_id is not None:
            turn = await self._turns.record(memory.turn_id)
            if memory.source_ref.startswith("messages:"):  # compaction: drawn from a summary
                episodes = await self._store.made_in_turn(user_id, memory.turn_id, Kind.EPISODE)
                summaries = tuple(e.id for e in episodes if e.id != memory.id)
                if await self._store.forget(user_id, memory_id) is None:
                    return None
                return Forgotten(memory, summaries=summaries)
            if turn is not None and turn.user_id == user_id:
                if turn.status in _UNDERWAY:
                    return Forgotten(memory, underway=turn.id)
                trigger = await self._messages.get(turn.message_id) if turn.message_id else None
                if trigger is not None and trigger.user_id == user_id:
                    said.append(trigger)
                said += [
                    m for m in await self._messages.of_turn(turn.id) if m.chat_id == turn.chat_id
                ]
                await self._turns.forget_transcript(turn.id)
        if await self._store.forget(user_id, memory_id) is None:
            return None
        for message in said:
            if message.text != FORGOTTEN:
                await self._messages.set_text(message.id, FORGOTTEN)
            await self._store.forget_message(message.id)
        chats = {m.chat_id for m in said} | ({memory.chat_id} if memory.chat_id else set())
        for text in {memory.text, *(m.text for m in said if m.text != FORGOTTEN)}:
            await self._messages.scrub_answers(chats, text, FORGOTTEN)
        return Forgotten(memory, len(said))

    async def _theirs(self, message: StoredMessage, user_id: int) -> bool:
        """Their own words, or Steward's answer in a turn of theirs."""
        if message.direction == "in":
            return message.user_id == user_id
        turn = await self._turns.record(message.turn_id) if message.turn_id else None
        return turn is not None and turn.user_id == user_id

    async def _underway(self, turn_id: int | None) -> bool:
        turn = await self._turns.record(turn_id) if turn_id else None
        return turn is not None and turn.status in _UNDERWAY
