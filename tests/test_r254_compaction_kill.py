"""R254: a compaction's episode and its mark are stored together or not at all.

The episode was committed (then its vector written), and only after that the compaction mark
that moves the history window past its messages. Steward stopped in between (SIGKILL, or its
upkeep cut off at a normal stop) left an episode with no mark: after the restart the same
messages were summarised again (the model paid twice) into a second episode, both in force and
both recalled. The stop is made here without timing: a trigger, put in the database from
outside, refuses the mark's row, as a process stopped right there never writes it.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from itertools import pairwise
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, echo_reply
from test_memory_agent import compactions, is_compaction, is_extraction, steward_with_memory

from memory.longterm import Kind

FILLER = "About the garden on the balcony: " + "tomatoes, basil and chillies. " * 5
CUT_OFF = (
    "CREATE TRIGGER cut_off BEFORE INSERT ON memory_compactions"
    " BEGIN SELECT RAISE(ABORT, 'Steward stopped here'); END"
)


def summarising(summaries: list[str]) -> object:
    """A model whose every summary is new words (as a second call's would be)."""

    def model(request: RecordedRequest) -> Reply:
        if is_compaction(request):
            summaries.append(f"Talked about the garden, summary number {len(summaries) + 1}.")
            return Reply.text(json.dumps({"summary": summaries[-1], "facts": []}))
        if is_extraction(request):
            return Reply.text('{"memories": []}')
        return echo_reply(request)

    return model


async def episodes(h: Harness) -> list[int]:
    """The episodes in force."""
    return [m.id for m in await h.memories() if m.kind is Kind.EPISODE and m.active]


async def test_a_stop_between_episode_and_mark_leaves_no_episode_to_summarise_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    summaries: list[str] = []
    fake_model.on_request(summarising(summaries))
    async with steward_with_memory(tmp_path, fake_model, STEWARD_HISTORY_TOKENS="150") as h:
        h.edit_database(CUT_OFF)
        for n in range(10):
            await h.say(f"{FILLER} ({n})")
            if summaries:
                break
        assert summaries, "the conversation outgrew its budget but was not compacted"
        # both or neither: the episode is not kept without the mark (before: kept, unmarked)
        assert await compactions(h) == []
        assert await episodes(h) == [], "an episode was kept with no compaction mark"
        database = h.settings.database_path

    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("DROP TRIGGER cut_off")  # the restart: the mark can be written again

    async with steward_with_memory(tmp_path, fake_model, STEWARD_HISTORY_TOKENS="150") as h:
        before = len(summaries)
        for n in range(10, 20):
            await h.say(f"{FILLER} ({n})")
            if len(summaries) > before:
                break
        marks = await compactions(h)
        assert marks, "the conversation was not compacted after the restart"
        # every episode in force is a mark's: none left over summarising the same messages
        assert sorted(await episodes(h)) == sorted(m.episode_id for m in marks)
        spans = sorted((m.first_message_id, m.last_message_id) for m in marks)
        assert all(a[1] < b[0] for a, b in pairwise(spans))
