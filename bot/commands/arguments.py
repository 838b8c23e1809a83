"""A subcommand's words, declared once and matched here, so no handler splits text itself.

A pattern is written as the usage reads: a bare word is a keyword (matched in any case),
`<name>` one word and `[name]` an optional one, `<name...>` / `[name...]` the rest of the text
as typed. `show <approval_id>`, `<approval_id> always`, `[count]` and `add <text...>` are
patterns. A match gives each name its word (an optional one left out is None, an optional rest
""); a converter given for a name turns its word into a value or raises `UsageError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Converter", "Pattern"]

Converter = Callable[[str], Any]
"""Turns one argument into its value, or raises `UsageError` saying what is wrong with it."""

_WORD = re.compile(r"\S+")
_PARAMETER = re.compile(r"^(?:<([a-z_][a-z0-9_]*)(\.\.\.)?>|\[([a-z_][a-z0-9_]*)(\.\.\.)?\])$")
_KEYWORD = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class _Token:
    text: str
    """The keyword, or the parameter's name."""
    keyword: bool = False
    required: bool = True
    rest: bool = False


class Pattern:
    """One subcommand's words; see the module docstring for how they are written."""

    def __init__(self, spec: str, converters: Mapping[str, Converter] | None = None) -> None:
        self.spec = spec
        self._tokens = tuple(_token(word) for word in spec.split())
        self.names = tuple(t.text for t in self._tokens if not t.keyword)
        if any(t.rest for t in self._tokens[:-1]):
            raise ValueError(f"pattern {spec!r}: only the last part may take the rest")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"pattern {spec!r} names a parameter twice")
        self._converters = dict(converters or {})
        unknown = set(self._converters) - set(self.names)
        if unknown:
            raise ValueError(f"pattern {spec!r} has no parameter {sorted(unknown)}")
        self._keywords = tuple(t.text for t in _leading_keywords(self._tokens))

    def match(self, args: str) -> dict[str, Any] | None:
        """The parameters' values when `args` fits the pattern, else None."""
        words = [(m.group(), m.start()) for m in _WORD.finditer(args)]
        values: dict[str, Any] = {}
        index = 0
        for token in self._tokens:
            here = words[index] if index < len(words) else None
            if token.keyword:
                if here is None or here[0].lower() != token.text:
                    return None
                index += 1
            elif token.rest:
                text = args[here[1] :].strip() if here is not None else ""
                if token.required and not text:
                    return None
                values[token.text] = text
                index = len(words)
            elif here is not None:
                values[token.text] = here[0]
                index += 1
            elif token.required:
                return None
            else:
                values[token.text] = None
        if index < len(words):
            return None
        return {name: self._convert(name, value) for name, value in values.items()}

    def claims(self, args: str) -> bool:
        """Whether `args` starts with this pattern's keywords (it has some): the words are
        meant for this subcommand, even when they do not fit it."""
        words = args.lower().split()
        return bool(self._keywords) and tuple(words[: len(self._keywords)]) == self._keywords

    def _convert(self, name: str, value: str | None) -> Any:
        convert = self._converters.get(name)
        return convert(value) if convert is not None and value else value


def _token(word: str) -> _Token:
    parameter = _PARAMETER.match(word)
    if parameter:
        if parameter[1]:
            return _Token(parameter[1], rest=bool(parameter[2]))
        return _Token(parameter[3], required=False, rest=bool(parameter[4]))
    if not _KEYWORD.match(word):
        raise ValueError(f"{word!r} is neither a keyword nor <name>, [name], <name...>")
    return _Token(word, keyword=True)


def _leading_keywords(tokens: tuple[_Token, ...]) -> list[_Token]:
    leading: list[_Token] = []
    for token in tokens:
        if not token.keyword:
            break
        leading.append(token)
    return leading
