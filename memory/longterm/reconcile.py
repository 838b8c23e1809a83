"""Bring Chroma in line with SQLite (run when vectors are attached).

The journal (migration 0006) says what changed since Chroma was last in step: pending removals
are applied and unindexed memories embedded. Then each user's count in Chroma is compared with
SQLite's, and only a user whose counts differ (a Chroma directory from elsewhere, another
embedder, a crash between the two writes) has every id compared.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from memory.embedder import Embedder
from memory.longterm.records import MemoryRecords
from memory.longterm.vector_ops import ReconcileReport, embed_and_upsert
from memory.longterm.vectors import VectorIndex

__all__ = ["reconcile"]

log = logging.getLogger(__name__)


async def reconcile(
    records: MemoryRecords,
    index: VectorIndex,
    embedder: Embedder,
    full_check_after: int,
    *,
    compare_all: bool = False,
) -> ReconcileReport:
    """Make Chroma hold exactly the vectors of the memories in force in SQLite.

    The journal (migration 0006) says what changed since Chroma was last in step: pending
    removals are applied and unindexed memories embedded. Then each user's count in Chroma
    is compared with SQLite's, and only a user whose counts differ (a Chroma directory from
    elsewhere, another embedder, a crash between the two writes) has every id compared;
    `compare_all`: every user's (a database just restored beside a Chroma server)."""
    report = ReconcileReport()
    for user_id, ids in (await records.pending_removals()).items():
        await asyncio.to_thread(index.delete, user_id, ids)
        await records.clear_removals(ids)
        report.removed += len(ids)
    in_sqlite = set(await records.users())
    in_chroma = set(await asyncio.to_thread(index.users))
    report.users = len(in_sqlite)
    for user_id in sorted(in_sqlite | in_chroma):
        missing = await records.unindexed_ids(user_id)
        if len(missing) <= full_check_after and not compare_all:
            report.added += await _add_vectors(records, index, embedder, user_id, missing)
            held = await asyncio.to_thread(index.count, user_id)
            if held == await records.indexed_count(user_id):
                continue
        report += await _compare_all(records, index, embedder, user_id, restored=compare_all)
    if report.added or report.removed:
        log.info("memory vectors reconciled: %d added, %d removed", report.added, report.removed)
    return report


async def _compare_all(
    records: MemoryRecords,
    index: VectorIndex,
    embedder: Embedder,
    user_id: int,
    *,
    restored: bool = False,
) -> ReconcileReport:
    """List every id Chroma holds for the user and repair both ways (the slow path)."""
    report = ReconcileReport(compared=[user_id])
    want = await records.active_ids(user_id)
    have = await asyncio.to_thread(index.ids, user_id)
    if not want and have:
        await asyncio.to_thread(index.drop, user_id)
        report.removed += len(have)
        report.dropped_collections.append(user_id)
        return report
    stale = sorted(have - want)
    if stale:
        await asyncio.to_thread(index.delete, user_id, stale)
        report.removed += len(stale)
    # after a restore, a memory not marked indexed whose id Chroma holds gets its vector again:
    # the one there may be another memory's that had the id (R158: one saved after a restore,
    # before vectors were attached, took the id of one saved after the backup, and kept its
    # vector). Otherwise (a store from before the journal: every memory unmarked) the ids
    # held are trusted, as re-embedding them all is what the comparison is there to avoid.
    unindexed = set(await records.unindexed_ids(user_id)) & want if restored else set()
    todo = sorted((want - have) | unindexed)
    report.added += await _add_vectors(records, index, embedder, user_id, todo)
    await records.mark_indexed(sorted((want & have) - unindexed), user_id=user_id)
    return report


async def _add_vectors(
    records: MemoryRecords,
    index: VectorIndex,
    embedder: Embedder,
    user_id: int,
    ids: Sequence[int],
) -> int:
    """Embed and write these memories' vectors, marking each chunk indexed once written."""
    added = 0
    for start in range(0, len(ids), 256):
        texts = await records.texts(ids[start : start + 256])
        chunk = [i for i in ids[start : start + 256] if i in texts]
        await asyncio.to_thread(
            embed_and_upsert, embedder, index, user_id, chunk, [texts[i] for i in chunk]
        )
        await records.mark_indexed(chunk, user_id=user_id)
        added += len(chunk)
    return added
