"""The collector set up for `steward run` (bot/gc_pauses.py, issue 19): the settled start-up
heap frozen out of the collector's walks without keeping start-up's garbage, what comes later
collected as before, every collection timed, and nothing done to a process that is not
`steward run`'s."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator

import pytest

from bot.gc_pauses import GcPauses, freeze_settled_heap, freeze_when_settled


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A reference cycle nobody holds (only the collector can free it), seen through a weakref."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the suite keeps an ordinary collector


def test_the_freeze_frees_start_up_garbage_first_and_keeps_the_living_out_of_walks(
    thawed: None,
) -> None:
    garbage = cycle()
    kept = Node()
    frozen = freeze_settled_heap()
    assert garbage() is None, "a cycle left by start-up would be frozen for good"
    assert frozen > 0 and gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects()), "a survivor is still walked"


def test_what_turns_make_after_the_freeze_is_still_collected(thawed: None) -> None:
    freeze_settled_heap()
    later = cycle()
    gc.collect()
    assert later() is None


def test_every_collection_is_counted_with_its_pause() -> None:
    pauses = GcPauses()
    pauses.install()
    try:
        gc.collect()
        gc.collect(0)
    finally:
        gc.callbacks.remove(pauses._callback)
    shown = pauses.snapshot()
    assert shown["collections"][2] == 1 and shown["collections"][0] == 1
    assert shown["pause_ms"][2] >= shown["longest_ms"][2] > 0


async def test_a_process_that_is_not_steward_runs_keeps_its_collector(thawed: None) -> None:
    assert await freeze_when_settled(asyncio.sleep, pauses=GcPauses()) == 0
    assert gc.get_freeze_count() == 0


async def test_steward_runs_freeze_waits_for_each_then_freezes(thawed: None) -> None:
    installed = GcPauses()
    installed.installed = True  # as `steward run` installs it, without its callback
    order: list[str] = []

    def waiting(name: str, forever: bool = False) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            order.append(name)
            if forever:
                await asyncio.Event().wait()

        return wait

    frozen = await freeze_when_settled(
        waiting("memory"),
        waiting("stuck", forever=True),
        waiting("quiet"),
        limit=0.2,
        pauses=installed,
    )
    assert order == ["memory", "stuck", "quiet"]
    assert frozen > 0 and gc.get_freeze_count() > 0
