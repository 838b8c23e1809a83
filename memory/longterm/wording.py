"""Whether a message says a fact in its words (`carries`), give or take an ending.

Compaction draws facts from a span of conversation, and the span's messages are all it has to
say where each came from: the message that says a fact in its words dates it, forgetting it
takes that message, and correcting it marks that message wherever it is shown again (R249:
`corrections_of` found a corrected memory's exchange by turn only, and a drawn fact's turn is
the compaction's). Pure text: it lives here so the memory store can use it as agent/ does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["carries"]

# Words too common to tell one fact from another ("the", "has", "the user").
_COMMON_WORDS = (
    "the and for with that this these those from into onto about after before their they them "
    "then than was were are has have had but you your yours our ours his her hers its who "
    "whom which what when where will would can could should also just very some any all one "
    "there here does did been being user owner steward"
)
_COMMON = frozenset(_COMMON_WORDS.split())
_NEGATIONS = frozenset(("not", "no", "never", "nor", "neither", "cannot", "without"))
_NEGATION_REACH = 4  # "not my sister", "don't live in Berlin": the words a negation reaches
_NEAR = 2  # "2 kids", "14 March": a number stands within two words of what it counts
_TOKEN = re.compile(r"\d+|[^\W\d_]+(?:['’-][^\W\d_]+)*")  # "Priya-Lena", "don't": one word
_CLAUSE = re.compile(r"[,;!?()\[\]]|[.:](?!\d)|\s[-–—]\s")  # "9:30" and "4.5" stay whole
_ORDINALS = frozenset(("st", "nd", "rd", "th"))
_SIBILANT_ES = ("ses", "xes", "zes", "ches", "shes")
_ENDINGS = (("ing", 3), ("ed", 3), ("er", 4), ("ly", 4))  # an ending, and the least left


def _stem(word: str) -> str:
    """A word without its common English endings (-s -es -ies -ed -ing -er -ly, a final -e or
    -y), so "lives", "lived", "living" and "live" meet, and "sister's" and "sisters". Not a word
    itself ("liv"): only ever compared with another stem."""
    w = word.casefold().replace("’", "'").removesuffix("'s").replace("'", "")
    for _ in range(3):  # "preferred" -> "preferr" -> "prefer" -> "pref", as "prefers"
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 4 and w.endswith(_SIBILANT_ES):
            w = w[:-2]
        elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        else:
            ending = next(
                (e for e, left in _ENDINGS if w.endswith(e) and len(w) >= len(e) + left), ""
            )
            if not ending:
                break
            w = w[: -len(ending)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouylsz":
                w = w[:-1]  # "running", "planned"
    if len(w) >= 4 and w.endswith("e"):
        w = w[:-1]  # "live", "liv(ing)"
    if len(w) >= 3 and w.endswith("y"):
        w = w[:-1] + "i"  # "marry", "marri(ed)"
    return w


def _stems_meet(a: str, b: str) -> bool:
    """The same word give or take an ending the stems kept ("allergic" and "allergy")."""
    short, long = sorted((a, b), key=len)
    return a == b or (len(short) >= 5 and long.startswith(short) and len(long) - len(short) <= 2)


@dataclass(frozen=True)
class _Word:
    text: str
    """Its stem; a number's digits without leading zeros."""
    number: bool = False
    negation: bool = False
    content: bool = False
    """Tells one fact from another: not a common word ("the", "has"), three letters or more."""
    negated: bool = False
    """A negation before it in its clause reaches it ("not my sister")."""


def _words(text: str) -> list[_Word]:
    """The words and numbers of a text in order ("14th" is 14)."""
    words: list[_Word] = []
    for clause in _CLAUSE.split(text):
        reach = 0
        for token in _TOKEN.findall(clause):
            lowered = token.casefold().replace("’", "'")
            if lowered in _ORDINALS and words and words[-1].number:
                continue
            if lowered in _NEGATIONS or lowered.endswith("n't"):
                words.append(_Word(lowered, negation=True))
                reach = _NEGATION_REACH
                continue
            if token.isdigit():
                words.append(_Word(token.lstrip("0") or "0", number=True, negated=reach > 0))
            else:
                plain = lowered.removesuffix("'s").replace("'", "")
                content = len(plain) >= 3 and plain not in _COMMON
                words.append(_Word(_stem(lowered), content=content, negated=reach > 0))
            reach = max(0, reach - 1)
    return words


def _near(words: list[_Word], at: int) -> list[_Word]:
    """The words within `_NEAR` of the run of numbers at `at` ("9:30", "2026-03-14")."""
    first = last = at
    while first > 0 and words[first - 1].number:
        first -= 1
    while last + 1 < len(words) and words[last + 1].number:
        last += 1
    return [w for w in words[max(0, first - _NEAR) : last + 1 + _NEAR] if not w.number]


def carries(fact: str, text: str) -> bool:
    """Whether a message says the fact drawn from it, in the fact's words give or take an
    ending: every word that tells the fact apart (not only under a negation, "Priya is my
    colleague, not my sister", unless the fact is negated too) and every number, beside one of
    those words when the fact has one beside it ("Has 2 kids." is not "in 2 hours ... the
    kids"). Finds which messages of a compacted span a fact came from: its date, and what
    forgetting it takes with it. Other wordings ("we moved to Paris" for "Lives in Paris.")
    are not found."""
    said = _words(fact)
    content = [w for w in said if w.content]
    if not content and not any(w.number for w in said):
        return False
    negative = any(w.negation for w in said)
    heard = [w for w in _words(text) if negative or not w.negated]
    if negative and not any(w.negation for w in heard):
        return False
    kept = [w.text for w in heard if not w.number and not w.negation]
    if not all(any(_stems_meet(w.text, k) for k in kept) for w in content):
        return False
    for at, number in enumerate(said):
        if number.number and not any(
            w.number and w.text == number.text and _beside(heard, i, content, _near(said, at))
            for i, w in enumerate(heard)
        ):
            return False
    return True


def _beside(heard: list[_Word], at: int, content: list[_Word], near_in_fact: list[_Word]) -> bool:
    """A number of the fact said at `at` stands by one of the fact's words, as it does in the
    fact (any order: "14 November, dentist at 9:30"); one standing by none there stands alone."""
    if not any(w.content for w in near_in_fact):
        return True
    return any(_stems_meet(w.text, n.text) for w in content for n in _near(heard, at))
