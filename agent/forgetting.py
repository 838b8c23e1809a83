"""Forgetting as the owner means it: the memory, and the words it came from.

(Some 400 lines: one forget's steps, in the one order a forget cut short can repeat.)

Deleting the one memory row left the fact where it was said. The message that stated it was
still a searchable transcript row, still read back as a neighbour of other results, still in
the chat history the model sees and in the text compaction summarises; months later it came
back as an "earlier message". So a memory forgotten takes with it the exchange it came from
(its turn: the person's message that set it off and what Steward answered in that chat), and
a transcript row forgotten takes its message: the stored text becomes a placeholder everywhere
it is read, the transcript rows of it (every member's, in a group) and their vectors go, the
turn's own transcript is dropped, and the person's earlier commands and their answers in
their private chats (a `/remember` that said it, a `/memory search` that quoted it or searched
for some of its words: R256) lose its text. A fact compaction drew from a span of conversation
has no exchange of its own: it takes the messages of that span that say it in its words
(`carries`: every number and every word that tells it apart, give or take an ending; not the
rest of the span, nor other wordings of it, which the answer sends to /memory search) and the
compaction's own transcript; the summary is named, to forget too.
Copies elsewhere go too (R95): its own words are taken out of the tool results and memory side
calls in the person's other turns' stored transcripts (a later search result that quoted it, the
call that drew it) and out of the `memory_save` request that saved it (`/approve show` printed it
whole), never anything else of the record of approved actions (R98); a goal note's own words
leave the `/goal note` command that said them; and `purge` rewrites the keyword index and
empties the WAL, so the words are not left in the database file for a backup to copy.
Only a person's own exchanges: a member forgetting a message someone else wrote in a group
loses their copy of it, not everyone's; what a turn sent to other chats stays theirs. An
exchange still going on (a turn running, or waiting for an approval, would write its
transcript back when it ends) is not forgotten until it is over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.forgotten_files import FilesForgotten, forget_files
from agent.memory_view import SHOWN_FOUND, SHOWN_RECALLED, shown_cut
from memory.approvals import ApprovalStore
from memory.clock import parse_iso
from memory.goals import Goal, GoalStatus, GoalStore, note_words
from memory.longterm import Kind, LongTermMemory, Memory
from memory.longterm.wording import carries
from memory.message_files import MessageFiles
from memory.messages import MessageLog, StoredMessage
from memory.schedules import Schedule, ScheduleStatus, ScheduleStore
from memory.turns import TurnLog, TurnRecord, TurnStatus

__all__ = ["FORGOTTEN", "Forgetting", "Forgotten", "made_there_said"]

FORGOTTEN = "(forgotten on request)"
"""What a forgotten message's text becomes: the history keeps its place, not its words."""

_UNDERWAY = {TurnStatus.RUNNING.value, TurnStatus.AWAITING_APPROVAL.value}
ECHOES_SCRUBBED = 20
"""Of what the reminders and tasks a forgotten exchange set have sent, how many of the newest
messages are looked for in the answers that may quote them."""
MIN_SCRUB = 12
"""Characters a text needs before it is taken out of earlier answers: "ok" or "the" would
be cut out of every answer."""


@dataclass(frozen=True)
class Forgotten:
    memory: Memory
    messages: int = 0
    """Messages of the conversation forgotten with it."""
    message_ids: tuple[int, ...] = ()
    """Those messages (the message log's ids), oldest first."""
    said_at: tuple[datetime, ...] = ()
    """When each of them was written, in the same order."""
    drawn: bool = False
    """A fact drawn from a summary of earlier conversation: `messages` are those of it that
    say the fact in its words (`carries`); other wordings of it are left (and may be none)."""
    underway: int | None = None
    """The turn it came from is still going on: nothing was forgotten (ask again after)."""
    summaries: tuple[int, ...] = ()
    """It was drawn from a summary of earlier conversation (compaction): that summary, which
    may say it too, and whose messages are kept. Named for the owner to forget as well."""
    files: FilesForgotten = field(default_factory=FilesForgotten)
    """The messages' files in inbox/: their own words deleted, the rest named."""
    set_there: tuple[Schedule, ...] = ()
    """Reminders and tasks the exchange set (as they were): their words gone with it, and
    those still to come cancelled (review 36: one sent the forgotten words again)."""
    still_set: tuple[Schedule, ...] = ()
    """A reminder whose own message was forgotten, set by a command or another exchange: it
    stays, named with how to cancel it (it says the words again at its next time)."""
    started_there: tuple[Goal, ...] = ()
    """Goals the exchange started (as they were): their title and next step gone with it; the
    notes, dates and check-ins stay, for `/goal rename`."""


@dataclass
class _MadeThere:
    schedules: list[Schedule] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    echoes: list[StoredMessage] = field(default_factory=list)
    run_turns: set[int] = field(default_factory=set)
    still_set: tuple[Schedule, ...] = ()
    underway: int | None = None


class Forgetting:
    def __init__(
        self,
        store: LongTermMemory,
        messages: MessageLog,
        turns: TurnLog,
        approvals: ApprovalStore,
        files: MessageFiles | None = None,
        workspace: Path | None = None,
        schedules: ScheduleStore | None = None,
        goals: GoalStore | None = None,
    ) -> None:
        """`files`, `workspace`: where the messages' files are listed and kept (None: a
        Steward without a workspace, whose messages bring none); `schedules`, `goals`: where
        what an exchange set up is kept."""
        self._store = store
        self._messages = messages
        self._turns = turns
        self._approvals = approvals
        self._files = files
        self._workspace = workspace
        self._schedules = schedules
        self._goals = goals

    async def forget(self, user_id: int, memory_id: int) -> Forgotten | None:
        """None when the user has no such memory."""
        memory = await self._store.get(user_id, memory_id)
        if memory is None:
            return None
        said: list[StoredMessage] = []
        summaries: tuple[int, ...] = ()
        turn_ids: set[int] = set()  # whose stored transcripts go
        drawn = False
        if memory.kind is Kind.MESSAGE and memory.message_id is not None:
            message = await self._messages.get(memory.message_id)
            if message is not None and await self._theirs(message, user_id):
                if await self._underway(message):
                    return Forgotten(memory, underway=message.turn_id or message.id)
                # the whole exchange: forgetting Steward's answer left the person's message
                # that said it, and the other way round (review 36)
                turn = await self._turn_of(message)
                if turn is not None and turn.user_id == user_id:
                    said = await self._exchange(turn, user_id)
                    turn_ids.add(turn.id)
                if message.id not in {m.id for m in said}:
                    said.append(message)
        elif memory.turn_id is not None and memory.source_ref.startswith("messages:"):
            # drawn from a summary of earlier conversation (compaction): the summary is named,
            # and a fact takes the messages of the span that say it (review 69)
            episodes = await self._store.made_in_turn(user_id, memory.turn_id, Kind.EPISODE)
            summaries = tuple(e.id for e in episodes if e.id != memory.id)
            if memory.kind is not Kind.EPISODE:  # a summary says the whole span: not all of it
                drawn = True
                said = await self._saying(memory, user_id)
                for message in said:
                    turn = await self._turn_of(message)
                    if turn is not None and turn.status in _UNDERWAY:
                        return Forgotten(memory, underway=turn.id)
                    if turn is not None and turn.user_id == user_id:
                        turn_ids.add(turn.id)
            turn_ids.add(memory.turn_id)  # the compaction's stored answer, which states it
        elif memory.turn_id is not None:
            turn = await self._turns.record(memory.turn_id)
            if turn is not None and turn.user_id == user_id:
                if turn.status in _UNDERWAY:
                    return Forgotten(memory, underway=turn.id)
                said = await self._exchange(turn, user_id)
                turn_ids.add(turn.id)
        # Each step can be done again, and the memory itself goes last: a forget cut short
        # (killed mid-way) leaves the memory there, so "/memory forget N" sent again finishes
        # it (R169: the row went first, and the words it came from stayed for good). The
        # words are scrubbed elsewhere before their messages lose them.
        made = await self._made_there(user_id, turn_ids, said)
        if made.underway is not None:
            return Forgotten(memory, underway=made.underway)
        turn_ids |= made.run_turns
        echoes = made.echoes
        for turn_id in sorted(turn_ids):
            await self._turns.forget_transcript(turn_id)
        texts = {memory.text}
        # what they said goes where they were quoted: `/remind list`, `/goal` answers, a
        # goal's notes as memories say them ("Progress on goal “…”"); read before the rows
        # lose them (below), so a forget cut short and sent again still looks for them
        texts |= {str(s.payload.get("text", "")) for s in made.schedules} - {FORGOTTEN}
        for goal in made.goals:
            if goal.title != FORGOTTEN:
                texts.add(goal.title)
                # as its own notes' memories name it, and those of its closing ("Goal “…” was
                # marked done"); not another goal's of the same title
                await self._store.replace_words(
                    user_id, Kind.GOAL_NOTE, f"“{goal.title}”", f"“{FORGOTTEN}”", goal.id
                )
        if (words := note_words(memory.text)) is not None:
            texts.add(words)  # `/goal note 1 <words>` and its answer said them so
        texts |= {message.text for message in said if message.text != FORGOTTEN}
        for text in _quoted_forms(texts):
            await self._messages.scrub_commands(user_id, text, FORGOTTEN)
            # in tool results (a later search that quoted it); a side call's answer loses the
            # memory's own words only: an exchange's ("Got it, I'll remember that.") would be
            # cut out of unrelated records (R98)
            await self._turns.scrub_transcripts(
                user_id, text, FORGOTTEN, side_calls=text == memory.text
            )
        # what its reminders and tasks sent, as answers quoted it (a search's turns around a
        # hit): the newest ECHOES_SCRUBBED, each a pass over the commands (a daily task's year
        # of runs would be 365), not over every turn's transcript (their own are dropped)
        echoed = {m.text for m in echoes[-ECHOES_SCRUBBED:]} - {FORGOTTEN}
        for text in _quoted_forms(echoed) - _quoted_forms(texts):
            await self._messages.scrub_commands(user_id, text, FORGOTTEN)
            # a turn waiting for an approval holds them in its history, sent again (few rows)
            await self._turns.scrub_transcripts(
                user_id, text, FORGOTTEN, side_calls=False, waiting_only=True
            )
        # a `/memory search` for some of its words (the secret searched for to forget it, R256)
        await self._messages.scrub_searches(user_id, texts | echoed, FORGOTTEN)
        await self._approvals.forget_memory(user_id, memory_id, FORGOTTEN)
        files = FilesForgotten()
        if self._files is not None:
            files = await forget_files(self._files, self._workspace, (m.id for m in said))
        # what the exchange set up loses its words last but its messages: cancelled, blanked
        # and retitled in one transaction each; a task that began to fire meanwhile is waited
        # out (its run holds the words)
        set_there: list[Schedule] = []
        started_there: list[Goal] = []
        if self._schedules is not None:
            cancelled = await self._schedules.forget_made_in(user_id, turn_ids, FORGOTTEN)
            if cancelled is None:
                return Forgotten(memory, underway=made.schedules[0].id if made.schedules else 0)
            set_there = cancelled
        if self._goals is not None:
            started_there = await self._goals.forget_made_in(user_id, turn_ids, FORGOTTEN)
        for message in [*said, *echoes]:
            if message.text != FORGOTTEN:
                await self._messages.set_text(message.id, FORGOTTEN)
            await self._store.forget_message(message.id)
        went = any(m.id == memory.message_id for m in said)  # a message's row: gone with it
        if await self._store.forget(user_id, memory_id) is None and not went:
            return None  # forgotten meanwhile, by another command
        said.sort(key=lambda m: m.id)
        return Forgotten(
            memory,
            len(said),
            message_ids=tuple(m.id for m in said),
            said_at=tuple(parse_iso(m.created_at) for m in said),
            drawn=drawn,
            summaries=summaries,
            files=files,
            set_there=tuple(set_there),
            started_there=tuple(started_there),
            still_set=made.still_set,
        )

    async def purge(self) -> None:
        """Rewrite the keyword index and empty the WAL, so forgotten words leave the database
        file: once after a command's forgets, not once each (~0.3 s at 100,000 memories)."""
        await self._store.records.purge_deleted()

    async def _saying(self, memory: Memory, user_id: int) -> list[StoredMessage]:
        """The messages of the span a compaction drew `memory` from (its `messages:a-b`, in its
        chat) that say it, of the person's own exchanges."""
        span = re.fullmatch(r"messages:(\d+)-(\d+)", memory.source_ref)
        if span is None or memory.chat_id is None:
            return []
        first, last = int(span.group(1)), int(span.group(2))
        if last < first:
            return []
        # the chat's messages from `first` on: at most last - first + 1 of them up to `last`
        rows = await self._messages.around(memory.chat_id, first, before=0, after=last - first)
        return [
            m
            for m in rows
            if first <= m.id <= last
            and m.text != FORGOTTEN
            and carries(memory.text, m.text)
            and await self._theirs(m, user_id)
        ]

    async def _made_there(
        self, user_id: int, turn_ids: set[int], said: list[StoredMessage]
    ) -> _MadeThere:
        """What the reminders and tasks the forgotten turns set sent since (in the chat each
        was sent to: a task's post to a group stays the group's), the turns of their runs,
        and whether one of them is running or waiting (forget it once that is over: its turn
        would write the words back). Read only: nothing is changed here."""
        made = _MadeThere()
        if self._goals is not None:
            made.goals = await self._goals.made_in(user_id, turn_ids)
        if self._schedules is None:
            return made
        schedules = made.schedules = await self._schedules.made_in(user_id, turn_ids)
        if firing := [s for s in schedules if s.status is ScheduleStatus.FIRING]:
            made.underway = firing[0].id
            return made
        ids = [s.id for s in schedules]
        shown = {m.id for m in said}
        made.echoes = [m for m in await self._messages.sent_by_schedules(ids) if m.id not in shown]
        for run_turn in await self._schedules.run_turns(ids):
            run = await self._turns.record(run_turn)
            if run is None:
                continue
            if run.status in _UNDERWAY:
                made.underway = run.id
                return made
            made.run_turns.add(run.id)
            made.echoes += [
                m for m in await self._messages.of_turn(run.id) if m.chat_id == run.chat_id
            ]
        mine = {s.id for s in schedules}
        for message in said:  # a reminder's own message: the reminder, if not forgotten with it
            if message.schedule_id is not None and message.schedule_id not in mine:
                schedule = await self._schedules.get(message.schedule_id)
                if (
                    schedule is not None
                    and schedule.user_id == user_id
                    and schedule.kind == "reminder"  # a briefing's is not "/remind cancel"
                    and schedule.status is ScheduleStatus.ACTIVE
                ):
                    made.still_set += (schedule,)
        return made

    async def _theirs(self, message: StoredMessage, user_id: int) -> bool:
        """Their own words, Steward's answer in a turn of theirs, or what a reminder of theirs
        sent them (review 36: forgotten, its words stayed: it was no one's)."""
        if message.direction == "in":
            return message.user_id == user_id
        if message.schedule_id is not None and self._schedules is not None:  # a reminder's
            schedule = await self._schedules.get(message.schedule_id)
            return schedule is not None and schedule.user_id == user_id
        turn = await self._turns.record(message.turn_id) if message.turn_id else None
        return turn is not None and turn.user_id == user_id

    async def _turn_of(self, message: StoredMessage) -> TurnRecord | None:
        """The turn a message belongs to (Steward's answer) or set off (a person's)."""
        if message.direction == "in":
            return await self._turns.of_message(message.id)
        return await self._turns.record(message.turn_id) if message.turn_id else None

    async def _underway(self, message: StoredMessage) -> bool:
        turn = await self._turn_of(message)
        return turn is not None and turn.status in _UNDERWAY

    async def _exchange(self, turn: TurnRecord, user_id: int) -> list[StoredMessage]:
        """The person's message that set the turn off, and what Steward sent in its chat."""
        said: list[StoredMessage] = []
        trigger = await self._messages.get(turn.message_id) if turn.message_id else None
        if trigger is not None and trigger.user_id == user_id:
            said.append(trigger)
        said += [m for m in await self._messages.of_turn(turn.id) if m.chat_id == turn.chat_id]
        return said


def _quoted_forms(texts: set[str]) -> set[str]:
    """The texts as answers and prompts quote them: whole, and cut as a search or a recall shows
    a long message (`shown_cut`). Too short a text would match inside unrelated words: left."""
    forms = set()
    for text in texts:
        forms.add(text)
        forms |= {shown_cut(text, SHOWN_FOUND), shown_cut(text, SHOWN_RECALLED)}
    return {form for form in forms if len(form) >= MIN_SCRUB}


def made_there_said(forgotten: Forgotten, zone: ZoneInfo) -> str:
    """What the exchange had set up and what became of it, for the answer (empty: nothing)."""
    said = ""
    cancelled = [
        s for s in forgotten.set_there if s.status in (ScheduleStatus.ACTIVE, ScheduleStatus.FIRING)
    ]
    if cancelled:
        named = [
            f"{s.kind} #{s.id}"
            + (f" ({s.next_run_at.astimezone(zone):%a %d %b %H:%M})" if s.next_run_at else "")
            for s in cancelled
        ]
        it, is_ = ("it", "is") if len(named) == 1 else ("them", "are")
        said += (
            f" With it, {_listed(named)} {is_} cancelled (the words were those you forgot): "
            f"set {it} again in your own words if you still want {it}."
        )
    for schedule in forgotten.still_set:
        said += (
            f" {schedule.kind.capitalize()} #{schedule.id}, which sent it, is still set and says "
            f"it again at its next time: /remind cancel {schedule.id} takes it."
        )
    if forgotten.started_there:
        goals = forgotten.started_there
        numbers = [f"#{g.id}" for g in goals]
        first = goals[0]
        again = f"/goal rename {first.id} <title> names it again"
        if first.status is not GoalStatus.ACTIVE:  # rename takes an active goal
            again = f"/goal reopen {first.id}, then " + again
        said += (
            f" It started goal {_listed(numbers)}, which loses its title with it and keeps its "
            f"notes and dates: {again}."
        )
    return said


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
