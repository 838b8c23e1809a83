"""Retrieval on labelled sets, through the public memory API only: load a set, store it, collect
each question's candidates once (`LongTermMemory.candidates`), then rank them under any weights
and mode (`Candidates.rank`) — what cross-validating the weights needs.

Two sets: the realistic conversations (tests/data/conversations/: every turn kept as a
transcript row with `save_messages`, questions with evidence turn ids) and the original set
(tests/data/retrieval_set.jsonl, memories saved one by one with supersession; `evaluation.py`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from memory.labels import TRUSTED, Label
from memory.longterm.evaluation import LabelledSet, populate
from memory.longterm.ranking import SearchMode, Weights
from memory.longterm.retrieval import Candidates
from memory.longterm.store import LongTermMemory
from memory.longterm.types import NewMessage, Source

__all__ = [
    "Case",
    "CaseScore",
    "Collected",
    "ConversationSet",
    "collect",
    "load_conversations",
    "old_set_cases",
    "score",
    "store_conversations",
    "story_groups",
    "summary",
]

_SOURCES = {"owner": Source.OWNER_SAID, "steward": Source.STEWARD_SAID, "member": Source.USER_SAID}


@dataclass(frozen=True)
class ConversationSet:
    about: dict[str, Any]
    turns: list[dict[str, Any]]
    questions: list[dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One question to ask: whose memory, the words, what must come back (any / all of it),
    what must not, and its type (for the tables)."""

    set: str
    id: str
    user_id: int
    query: str
    expected: frozenset[int]
    qtype: str
    forbidden: frozenset[int] = frozenset()
    now: datetime | None = None
    wording: str = ""  # conversations: "natural" (reuses the evidence's words) or "paraphrased"
    group: str = ""
    """Cases that must share a fold: those about one story (conversations: the eight
    retellings of an arc, and arcs a question joins, "job+move"; the original set: questions
    whose answers share a memory), so nothing a held-out question is about is among the
    cases its weights are chosen on (`story_groups`). Empty: the case alone."""


@dataclass(frozen=True)
class Collected:
    case: Case
    candidates: Candidates


@dataclass(frozen=True)
class CaseScore:
    case: Case
    any: float  # some evidence in the top k
    all: float  # every evidence in the top k
    recall: float  # share of the evidence in the top k
    rr: float  # 1 / rank of the first evidence (0 when not in the first 50)
    forbidden: int


def load_conversations(folder: Path, names: Iterable[str] | None = None) -> list[ConversationSet]:
    sets = []
    wanted = set(names) if names is not None else None
    for path in sorted(folder.glob("*.jsonl")):
        if wanted is not None and path.stem not in wanted:
            continue
        about: dict[str, Any] = {}
        turns: list[dict[str, Any]] = []
        questions: list[dict[str, Any]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            kind = record.pop("type")
            if kind == "conversation":
                about = record
            elif kind == "turn":
                turns.append(record)
            elif kind == "question":
                questions.append(record)
        sets.append(ConversationSet(about, turns, questions))
    return sets


async def store_conversations(
    store: LongTermMemory, sets: Sequence[ConversationSet], *, chunk: int = 500
) -> list[Case]:
    """Each conversation as one user's transcript (its private and group chats), saved in
    bulk; returns its questions as cases. Vectors are written behind: call
    `store.flush_vectors()` before ranking by meaning."""
    cases: list[Case] = []
    for conv in sets:
        user = await store.create_user(conv.about["owner"])
        chats = {
            name: await store.create_chat(f"{conv.about['id']}-{name}", kind=name)
            for name in conv.about["chats"]
        }
        rows = [
            NewMessage(
                user_id=user,
                chat_id=chats[turn["chat"]],
                text=turn["text"],
                speaker=turn["speaker"],
                created_at=datetime.fromisoformat(turn["date"]),
                source=_SOURCES[turn["role"]],
                label=Label.untrusted("another person's message")
                if turn["role"] == "member"
                else TRUSTED,
            )
            for turn in conv.turns
        ]
        ids: list[int | None] = []
        for start in range(0, len(rows), chunk):
            ids += await store.save_messages(rows[start : start + chunk])
        by_turn = {turn["id"]: i for turn, i in zip(conv.turns, ids, strict=True) if i}
        now = datetime.fromisoformat(conv.about["asked_at"])
        cases += [
            Case(
                set="conversations",
                id=q["id"],
                user_id=user,
                query=q["query"],
                expected=frozenset(by_turn[t] for t in q["evidence"]),
                qtype=q["qtype"],
                now=now,
                wording=q.get("wording", ""),
                group=q.get("arc", ""),  # made whole by `story_groups`
            )
            for q in conv.questions
        ]
    return cases


async def old_set_cases(store: LongTermMemory, labelled: LabelledSet, now: datetime) -> list[Case]:
    """The original set: its people as users, memories saved oldest first (supersession at
    work), its cases."""
    users = {name: await store.create_user(name) for name in labelled.users}
    keys = await populate(store, labelled, users, now)
    return [
        Case(
            set="original",
            group="o:" + ",".join(sorted(case["expected"])),  # made whole by `story_groups`
            id=f"o{number}",
            user_id=users[case["user"]],
            query=case["query"],
            expected=frozenset(keys[k] for k in case["expected"]),
            qtype=case["category"],
            forbidden=frozenset(keys[k] for k in case.get("not_expected", [])),
            now=now,
        )
        for number, case in enumerate(labelled.cases)
    ]


async def collect(store: LongTermMemory, cases: Sequence[Case], *, limit: int) -> list[Collected]:
    """Every case's candidates (hybrid: both lists), once."""
    out = []
    for case in cases:
        found = await store.candidates(case.user_id, case.query, limit=limit)
        if case.now is not None:
            found.now = case.now
        out.append(Collected(case, found))
    return out


def score(
    collected: Sequence[Collected], weights: Weights, mode: SearchMode, k: int
) -> list[CaseScore]:
    out = []
    for item in collected:
        ranked = [h.memory.id for h in item.candidates.rank(weights, mode=mode, reuse=True)[:50]]
        top = set(ranked[:k])
        expected = item.case.expected
        first = next((n for n, i in enumerate(ranked, 1) if i in expected), None)
        out.append(
            CaseScore(
                case=item.case,
                any=1.0 if top & expected else 0.0,
                all=1.0 if expected <= top else 0.0,
                recall=len(top & expected) / max(1, len(expected)),
                rr=1.0 / first if first else 0.0,
                forbidden=len(top & item.case.forbidden),
            )
        )
    return out


def summary(scores: Sequence[CaseScore]) -> dict[str, dict[str, float]]:
    """By question type (and "all"): cases, any@k, all@k, recall@k, MRR, forbidden hits."""
    groups: dict[str, list[CaseScore]] = defaultdict(list)
    for s in scores:
        groups[s.case.qtype].append(s)
        groups["all"].append(s)
    return {
        name: {
            "cases": len(items),
            "any": sum(s.any for s in items) / len(items),
            "all": sum(s.all for s in items) / len(items),
            "recall": sum(s.recall for s in items) / len(items),
            "mrr": sum(s.rr for s in items) / len(items),
            "forbidden": sum(s.forbidden for s in items),
        }
        for name, items in sorted(groups.items())
    }


def story_groups(cases: Sequence[Case]) -> list[Case]:
    """The cases with `group` made whole: conversation questions by their arc's name (not the
    question's own "roof.3"), joined across a question that spans arcs ("roof+mortgage"); the
    original set's questions joined wherever their answers share a memory. One group per
    connected story, named after its first member."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def members(case: Case) -> list[str]:
        if not case.group:
            return [f"case:{case.id}"]
        if case.group.startswith("o:"):
            return [f"o:{key}" for key in case.group[2:].split(",") if key] or [f"case:{case.id}"]
        return [f"arc:{arc}" for arc in case.group.split(".")[0].split("+")]

    keys = [members(case) for case in cases]
    for found in keys:
        for key in found[1:]:
            parent[find(key)] = find(found[0])
    return [replace(case, group=find(found[0])) for case, found in zip(cases, keys, strict=True)]
