"""Generate the realistic labelled set: long conversations between an owner, Steward and the
owner's group chat, with questions whose evidence turns are known (tests/data/conversations/).

    .venv/bin/python bench/conversations_gen.py          (rewrites the committed JSONL files)
    .venv/bin/python bench/conversations_gen.py --check  (fails if they differ from a fresh run)

Deterministic (seeded `random.Random`, no clock). Each conversation tells every story arc of
bench/conversation_topics.py with its own names and values, spread over eight months of
sessions in a private chat and a group chat, between greetings, small talk and filler ("ok",
"thanks!", "bye"). Facts change (a move, a new job); images come described in words
("[photo: …]"); every turn is dated. Questions are worded apart from their evidence; the
`about` record of each file says how many of a question's meaningful words its evidence shares
(`lexical_overlap`), so the set's difficulty is stated, not assumed.

(Over 400 lines: one generator whose rules must be read together to judge how hard the set is;
its data is in bench/conversation_topics.py.)
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import json
import random
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.conversation_topics import (  # noqa: E402
    ARCS,
    CLOSINGS,
    GREETINGS,
    SMALL_TALK,
    STEWARD_ACKS,
    STEWARD_GREETINGS,
)
from memory.longterm.terms import query_terms  # noqa: E402

OUT = ROOT / "tests" / "data" / "conversations"
SEED = 13
PEOPLE = [
    ("Maya", "Lena", "Tom"),
    ("Daniel", "Aisha", "Rob"),
    ("Aiko", "Kenji", "Sara"),
    ("Kwame", "Efua", "Jonah"),
    ("Ines", "Pablo", "Clara"),
    ("Oliver", "Nadia", "Greg"),
    ("Freya", "Magnus", "Astrid"),
    ("Samir", "Leila", "Yusuf"),
]
SPAN_DAYS = 240
MONTHS = list(calendar.month_name)[1:]


@dataclass
class Turn:
    id: str
    chat: str
    role: str
    speaker: str
    date: datetime
    text: str


@dataclass
class Conversation:
    id: str
    owner: str
    people: tuple[str, str]
    start: datetime
    turns: list[Turn] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)


def _fill(template: str, slots: dict[str, Any]) -> str:
    return template.format(**slots)


def _pick(rng: random.Random, value: Any) -> str:
    return rng.choice(value) if isinstance(value, list) else value


def _instances(rng: random.Random, names: dict[str, str]) -> list[dict[str, Any]]:
    """Every arc with its slot values drawn for this conversation, in a random order."""
    arcs = []
    for arc in ARCS:
        slots = dict(names)
        for name, values in arc["slots"].items():
            slots[name] = rng.choice(values)
        arcs.append({"arc": arc, "slots": slots})
    rng.shuffle(arcs)
    return arcs


def _schedule(rng: random.Random, arcs: list[dict[str, Any]]) -> list[tuple[float, int, int]]:
    """(position in [0, 1), arc index, stage) of every stage: an arc's stages in order, weeks
    apart."""
    items = []
    for index, instance in enumerate(arcs):
        stages = len(instance["arc"]["stages"])
        gap = rng.uniform(0.06, 0.22)
        start = rng.uniform(0.0, max(0.02, 0.98 - gap * (stages - 1)))
        for stage in range(stages):
            items.append((min(0.99, start + stage * gap + rng.uniform(0, 0.02)), index, stage))
    return sorted(items)


def generate(index: int) -> Conversation:
    rng = random.Random(SEED * 1000 + index)
    owner, a, b = PEOPLE[index]
    start = datetime(2025, 1, 6, tzinfo=UTC) + timedelta(days=index * 9)
    conv = Conversation(f"c{index + 1}", owner, (a, b), start)
    names = {"owner": owner, "a": a, "b": b}
    speakers = {"o": owner, "s": "Steward", "a": a, "b": b}
    roles = {"o": "owner", "s": "steward", "a": "member", "b": "member"}
    arcs = _instances(rng, names)
    where: dict[tuple[int, int, int], str] = {}  # (arc, stage, turn) -> turn id
    clock = start

    def say(chat: str, who: str, text: str) -> str:
        nonlocal clock
        clock += timedelta(seconds=rng.randint(15, 240))
        turn_id = f"{conv.id}-t{len(conv.turns) + 1:04d}"
        conv.turns.append(Turn(turn_id, chat, roles[who], speakers[who], clock, text))
        return turn_id

    schedule = _schedule(rng, arcs)
    position = 0
    while position < len(schedule):
        # One session: this stage, sometimes the next one too (not of the same arc or chat).
        items = [schedule[position]]
        position += 1
        chat = "group" if arcs[items[0][1]]["arc"].get("group") else "private"
        if (
            position < len(schedule)
            and rng.random() < 0.3
            and schedule[position][1] != items[0][1]
            and bool(arcs[schedule[position][1]]["arc"].get("group")) == (chat == "group")
        ):
            items.append(schedule[position])
            position += 1
        day = start + timedelta(days=items[0][0] * SPAN_DAYS)
        clock = max(clock + timedelta(hours=2), day.replace(hour=rng.randint(7, 21)))
        clock += timedelta(minutes=rng.randint(0, 59))
        if chat == "private":
            say(chat, "o", rng.choice(GREETINGS))
            if rng.random() < 0.7:
                say(chat, "s", rng.choice(STEWARD_GREETINGS))
            if rng.random() < 0.3:
                for who, text in rng.choice(SMALL_TALK):
                    say(chat, who, text)
        else:
            say(chat, rng.choice("ab"), rng.choice(["morning all", "hey guys", "👋", "hiii"]))
        for _, arc_index, stage in items:
            instance = arcs[arc_index]
            for number, (who, text) in enumerate(instance["arc"]["stages"][stage]):
                line = _fill(_pick(rng, text), instance["slots"])
                where[(arc_index, stage, number)] = say(chat, who, line)
        if chat == "private" and rng.random() < 0.25:
            for who, text in rng.choice(SMALL_TALK):
                say(chat, who, text)
        if chat == "private":
            who, text = rng.choice(CLOSINGS)
            say(chat, who, text)
            if rng.random() < 0.5:
                say(chat, "s", rng.choice(STEWARD_ACKS))
        else:
            say(chat, rng.choice("ab"), rng.choice(["ok cool", "👍", "lol", "see you all"]))
    dates = {turn.id: turn.date for turn in conv.turns}
    for arc_index, instance in enumerate(arcs):
        arc = instance["arc"]
        for number, (qtype, templates, evidence) in enumerate(arc["questions"]):
            ids = [where[(arc_index, s, t)] for s, t in evidence]
            template = rng.choice(templates)
            slots = dict(instance["slots"])
            for match in re.finditer(r"\{month:(\d+):(\d+)\}", template):
                turn_id = where[(arc_index, int(match[1]), int(match[2]))]
                slots[match[0][1:-1]] = MONTHS[dates[turn_id].month - 1]
            query = _fill_months(template, slots)
            conv.questions.append(
                {
                    "id": f"{conv.id}-q{len(conv.questions) + 1:03d}",
                    "qtype": qtype,
                    "query": query,
                    "evidence": ids,
                    "arc": f"{arc['key']}.{number}",
                }
            )
    conv.questions += _cross_arc(conv, arcs, where)
    _word_users(conv, {i["arc"]["key"]: _slot_words(i["slots"], names) for i in arcs})
    return conv


NATURAL_SHARE = 38  # percent of questions worded the way users ask: with the evidence's words
NATURAL_FORMS = [
    "what did I tell you about the {words}?",
    "{question} (the {words} thing)",
    "remember the {words}? {question}",
    "{words}: {question}",
    "that {words} stuff, {question_lower}",
]


def _natural(question_id: str) -> bool:
    """Deterministic, independent of the generator's random stream: ~38 % of questions."""
    return int(hashlib.sha256(question_id.encode()).hexdigest()[:8], 16) % 100 < NATURAL_SHARE


def _slot_words(slots: dict[str, Any], names: dict[str, str]) -> set[str]:
    """The meaningful words of an arc's drawn values (its topic's names and nouns)."""
    values: list[str] = []
    for name, value in slots.items():
        if name in names:
            continue
        values += [str(v) for v in value.values()] if isinstance(value, dict) else [str(value)]
    return {_stem(w) for v in values for w in query_terms(v, max_terms=99)}


def _word_users(conv: Conversation, topics: dict[str, set[str]]) -> None:
    """Give a deterministic share of questions (every type) the wording real users use: they
        name the topic's key content words, the ones its evidence uses ("the roof", "pottery
        class", a name). Key words: the evidence's rarest meaningful words in this conversation
        (a name or a noun of that story, not "today"): the arc's drawn values first, then the
    evidence's rarest long words. The others stay paraphrased."""
    text = {turn.id: turn.text for turn in conv.turns}
    frequency: dict[str, int] = {}
    for turn in conv.turns:
        for word in {_stem(w) for w in query_terms(turn.text, max_terms=99)}:
            frequency[word] = frequency.get(word, 0) + 1
    for question in conv.questions:
        if not _natural(question["id"]):
            question["wording"] = "paraphrased"
            continue
        rng = random.Random(question["id"])
        asked = {_stem(w) for w in query_terms(question["query"], max_terms=99)}
        topic = set().union(
            *(topics.get(k, set()) for k in question["arc"].split(".")[0].split("+"))
        )
        words: list[str] = []
        for turn_id in question["evidence"]:
            terms = [
                w
                for w in dict.fromkeys(query_terms(text[turn_id], max_terms=99))
                if _stem(w) not in asked and not w.isdigit() and len(w) > 2
            ]
            terms.sort(
                key=lambda w: (_stem(w) not in topic, len(w) < 5, frequency.get(_stem(w), 0))
            )
            for word in terms[:1]:
                if word not in words:
                    words.append(word)
        if not words:
            question["wording"] = "paraphrased"
            continue
        query = question["query"]
        form = rng.choice(NATURAL_FORMS)
        question["query"] = form.format(
            words=" ".join(words[:3]),
            question=query,
            question_lower=query[:1].lower() + query[1:],
        )
        question["wording"] = "natural"


def _fill_months(template: str, slots: dict[str, Any]) -> str:
    text = re.sub(r"\{month:\d+:\d+\}", lambda m: str(slots[m[0][1:-1]]), template)
    return text.format(**slots)


def _cross_arc(
    conv: Conversation, arcs: list[dict[str, Any]], where: dict[tuple[int, int, int], str]
) -> list[dict[str, Any]]:
    """Questions joining two arcs (multi-hop across months)."""
    by_key = {instance["arc"]["key"]: (i, instance["slots"]) for i, instance in enumerate(arcs)}
    asks = [
        (
            "job",
            (1, 0),
            "move",
            (1, 0),
            "Had I already decided to leave {old} when I got the offer from {newco}?",
        ),
        (
            "pet",
            (0, 0),
            "move",
            (2, 0),
            "Did {pet} come with us to the new flat, or did we adopt her after?",
        ),
        (
            "roof",
            (2, 0),
            "mortgage",
            (0, 0),
            "Around the time of my home loan, was the attic leak already sorted?",
        ),
        ("trip", (1, 0), "job", (2, 0), "Was my holiday before or after I started at {newco}?"),
        ("running", (2, 0), "dentist", (1, 0), "Which came first, my race or my dental surgery?"),
        (
            "car",
            (1, 0),
            "bike",
            (0, 0),
            "How was I getting around after the car broke down, and do I still have that bike?",
        ),
    ]
    out = []
    for key1, (s1, t1), key2, (s2, t2), template in asks:
        i1, slots1 = by_key[key1]
        i2, slots2 = by_key[key2]
        out.append(
            {
                "id": f"{conv.id}-q{len(conv.questions) + len(out) + 1:03d}",
                "qtype": "multi",
                "query": template.format(**(slots1 | slots2)),
                "evidence": [where[(i1, s1, t1)], where[(i2, s2, t2)]],
                "arc": f"{key1}+{key2}",
            }
        )
    return out


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def overlap(conv: Conversation, wording: str | None = None) -> float:
    """Mean share of a question's meaningful words that appear in its evidence turns (of the
    questions worded `wording`, or all)."""
    text = {turn.id: turn.text for turn in conv.turns}
    shares = []
    for question in conv.questions:
        if wording is not None and question.get("wording") != wording:
            continue
        words = {_stem(w) for w in query_terms(question["query"])}
        evidence = {
            _stem(w)
            for turn_id in question["evidence"]
            for w in query_terms(text[turn_id], max_terms=99)
        }
        if words:
            shares.append(len(words & evidence) / len(words))
    return sum(shares) / max(1, len(shares))


def records(conv: Conversation) -> list[dict[str, Any]]:
    asked_at = conv.turns[-1].date + timedelta(days=2)
    about = {
        "type": "conversation",
        "id": conv.id,
        "owner": conv.owner,
        "people": list(conv.people),
        "chats": ["private", "group"],
        "turns": len(conv.turns),
        "questions": len(conv.questions),
        "first": conv.turns[0].date.isoformat(),
        "last": conv.turns[-1].date.isoformat(),
        "asked_at": asked_at.isoformat(),
        "lexical_overlap": round(overlap(conv), 3),
        "natural_questions": sum(q["wording"] == "natural" for q in conv.questions),
        "lexical_overlap_natural": round(overlap(conv, "natural"), 3),
        "lexical_overlap_paraphrased": round(overlap(conv, "paraphrased"), 3),
        "generator": "bench/conversations_gen.py",
    }
    out: list[dict[str, Any]] = [about]
    for turn in conv.turns:
        out.append(
            {
                "type": "turn",
                "id": turn.id,
                "chat": turn.chat,
                "role": turn.role,
                "speaker": turn.speaker,
                "date": turn.date.isoformat(),
                "text": turn.text,
            }
        )
    out += [{"type": "question", **q} for q in conv.questions]
    return out


def render(conv: Conversation) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(conv))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stale = []
    totals = {"turns": 0, "questions": 0}
    for index in range(len(PEOPLE)):
        conv = generate(index)
        text = render(conv)
        path = args.out / f"{conv.id}.jsonl"
        totals["turns"] += len(conv.turns)
        totals["questions"] += len(conv.questions)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
        print(
            f"{conv.id}: {len(conv.turns)} turns, {len(conv.questions)} questions, "
            f"{conv.turns[0].date:%Y-%m-%d} .. {conv.turns[-1].date:%Y-%m-%d}, "
            f"overlap {overlap(conv):.2f} (natural "
            f"{sum(q['wording'] == 'natural' for q in conv.questions)}: "
            f"{overlap(conv, 'natural'):.2f}, paraphrased: {overlap(conv, 'paraphrased'):.2f})"
        )
    print(f"total: {totals['turns']} turns, {totals['questions']} questions")
    if stale:
        print(f"out of date: {', '.join(stale)} (run bench/conversations_gen.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
