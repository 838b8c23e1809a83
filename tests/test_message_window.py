"""A chat's conversation is read on every turn; `MessageLog.recent` answers it from windows kept
in memory (memory/message_window.py) that every write of the log updates. Checked against the
plain SQL it replaces, after every one of thousands of random writes over more chats than the
windows hold: incoming and outgoing messages, in and out of the history, status changes in and
out of view (failed, interrupted, sent after all), text replaced, reads with any limit and any
`before` point, reads racing writes."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

from memory.clock import FrozenClock
from memory.messages import InStatus, OutStatus, StoredMessage
from memory.stores import Stores

STATUSES = [*InStatus, *OutStatus]


async def plain(stores: Stores, chat_id: int, before_id: int | None, limit: int) -> list[int]:
    """What `recent` returned before the windows: the query itself."""
    rows = await stores.db.fetchall(
        "SELECT id FROM messages WHERE chat_id = ? AND in_history = 1"
        " AND (direction = 'out' OR id < ?)"
        " AND status IN ('handled', 'sent', 'pending', 'received')"
        " ORDER BY id DESC LIMIT ?",
        (chat_id, before_id if before_id is not None else 2**62, limit),
    )
    return [int(r["id"]) for r in reversed(rows)]


def ids(messages: list[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


async def test_recent_always_answers_what_the_query_would(tmp_path: Path) -> None:
    rng = random.Random(19)
    stores = await Stores.open(tmp_path / "s.db", FrozenClock(datetime(2026, 6, 1, tzinfo=UTC)))
    try:
        log = stores.messages
        chats = [(await stores.people.chat("test", f"c{i}")).id for i in range(6)]
        sent: list[int] = []
        for step in range(2500):
            chat = rng.choice(chats[:3] if rng.random() < 0.7 else chats)
            op = rng.random()
            if op < 0.3:
                new = await log.record_incoming(
                    chat_id=chat,
                    user_id=None,
                    text=f"in {step}",
                    platform_message_id=f"p{step}",
                    in_history=rng.random() < 0.9,
                )
                assert new is not None
                sent.append(new)
            elif op < 0.55:
                new = await log.record_outgoing(
                    chat_id=chat, text=f"out {step}", turn_id=step, in_history=rng.random() < 0.9
                )
                sent.append(new)
            elif op < 0.75 and sent:
                target = rng.choice(sent[-300:] if rng.random() < 0.8 else sent)
                turn = rng.choice([None, step])
                await log.set_status(target, rng.choice(STATUSES), turn_id=turn)
            elif op < 0.8 and sent:
                await log.set_text(rng.choice(sent), f"text {step}")
            else:
                limit = rng.choice([1, 5, 50, 200, 224, 225, 400])
                before = rng.choice([None, *(sent[-20:] or [None])])
                got = await log.recent(chat, before_id=before, limit=limit)
                assert ids(got) == await plain(stores, chat, before, limit), step
                fresh = {m.id: m for m in await log.all()}
                assert got == [fresh[m.id] for m in got], step  # status, text, turn: current
        for chat in chats:  # and every chat at the end, as a turn reads it
            got = await log.recent(chat, limit=200)
            assert ids(got) == await plain(stores, chat, None, 200)
    finally:
        await stores.close()


async def test_reads_racing_writes_never_keep_a_stale_window(tmp_path: Path) -> None:
    """Reads over more chats than the windows hold (so they keep going to SQLite) while
    messages are written to those chats: a window read before a write is not kept."""
    stores = await Stores.open(tmp_path / "s.db", FrozenClock(datetime(2026, 6, 1, tzinfo=UTC)))
    try:
        log = stores.messages
        chats = [(await stores.people.chat("test", f"c{i}")).id for i in range(6)]

        async def writes() -> None:
            for i in range(300):
                await log.record_outgoing(chat_id=chats[i % 6], text=f"w{i}", turn_id=i)
                await asyncio.sleep(0)

        async def reads(offset: int) -> None:
            for i in range(300):
                await log.recent(chats[(i + offset) % 6], limit=200)

        await asyncio.gather(writes(), reads(0), reads(3))
        for chat in chats:
            assert ids(await log.recent(chat, limit=200)) == await plain(stores, chat, None, 200)
    finally:
        await stores.close()
