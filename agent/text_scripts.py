"""Which writing systems a text's letters belong to, to tell a look-alike from a word one
language writes (R194, R200): `b\u043ess` (a Cyrillic o among Latin letters) is a mix, Japanese
kanji with kana and Latin is not. Used for e-mail addresses (agent/mail/message.py) and for
hosts on approval cards (agent/cards.py). `mostly_unlatin` tells recall when a text is written
in letters the embedder was never trained on (R211)."""

from __future__ import annotations

import unicodedata

import regex

__all__ = ["mixed_scripts", "mostly_unlatin"]

_SCRIPT_FAMILIES = (  # scripts one language writes together (Japanese, Chinese, Korean)
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)
_SCRIPTS = regex.compile(  # Unicode's Script_Extensions: U+30FC is Hiragana and Katakana
    "|".join(
        f"(?P<{name}>\\p{{scx={name}}})"
        for name in (
            *("Latin", "Greek", "Cyrillic", "Armenian", "Georgian", "Cherokee", "Coptic"),
            *("Han", "Hiragana", "Katakana", "Hangul", "Bopomofo"),
        )
    )
)


def _script(char: str) -> str | None:
    """The writing a letter belongs to: its Unicode script, among those that look alike or that
    write one language together; else the first word of its name (Thai, Arabic; U+00B5 "Micro",
    U+1D41B "Mathematical": of no script of their own, they count apart). A full-width letter
    counts apart too, and so does a letter Unicode itself equates with another (the Kelvin
    and Angstrom signs: Latin by script, "K" and "Å" to the eye). None: no letter (a mark, a
    digit), or a modifier of no one script (the Hawaiian okina U+02BB). R200: the first word
    of the name had made the iteration mark U+3005 "Ideographic", the prolonged sound mark
    U+30FC "Katakana-Hiragana" and the okina "Modifier", so Sasaki's and a ramen shop's
    Japanese addresses were refused as look-alikes."""
    category = unicodedata.category(char)
    if not category.startswith("L"):
        return None
    if unicodedata.normalize("NFC", char) != char:  # the Kelvin sign is "K" by another code
        return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0].title()  # R203: "Kelvin"
    found = _SCRIPTS.match(char)
    if found is not None and found.lastgroup is not None:
        script = found.lastgroup
    elif category == "Lm":
        return None
    else:
        script = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0].title()
    return (
        f"Full-width {script}" if unicodedata.decomposition(char).startswith("<wide>") else script
    )


def mixed_scripts(text: str) -> list[str]:
    """The scripts of `text`'s letters when it mixes them as no one language does, else []:
    `b\u043ess` (a Cyrillic o) is, Japanese kanji with kana and Latin is not (R194, R200)."""
    scripts = {script for script in map(_script, text) if script is not None}
    if len(scripts) < 2 or any(scripts <= family for family in _SCRIPT_FAMILIES):
        return []
    return sorted(scripts)


def mostly_unlatin(text: str) -> bool:
    """Whether most of `text`'s letters are outside the Latin script (Cyrillic, Han, kana,
    Hangul, Arabic, Hebrew, Devanagari, Thai...). R211: the embedder (all-MiniLM-L6-v2) was
    trained on English, and puts any two such sentences at a cosine of 0.45-0.77, related or
    not, so closeness in meaning cannot be read from it there. A text with no letters is not;
    a long one is judged by its first 1,000 characters (a turn weighs up to twenty)."""
    if text.isascii():
        return False
    latin = other = 0
    for script in map(_script, text[:1000]):
        if script is None:
            continue
        if script in ("Latin", "Full-width Latin"):
            latin += 1
        else:
            other += 1
    return other > latin
