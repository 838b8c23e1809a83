"""Checking a call's arguments against an MCP server's input schema, with regular expressions
that cannot hold the event loop.

jsonschema runs a schema's `pattern` and `patternProperties` with Python's backtracking `re`, on
the event loop, before the policy decides: a server's `^(a|a)*$` against 26 letters held every
chat for 5 s, each letter more doubling it, wherever the pattern sat (a `$ref`, `dependencies`,
`not`). Here those keywords match with `regex` under a time limit; a match that takes longer is
not decided here (the server checks its own input): it counts as a match, so it holds nothing
(under `not` that refuses the call: the server may have meant that).
`unevaluatedProperties` is left to the server too (it would run the patterns with `re`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import referencing
import regex

__all__ = [
    "NO_REMOTE_REFS",
    "checker",
    "expands_within",
    "one_dialect",
    "output_problem",
    "time_budget",
]

MATCH_SECONDS = 0.05


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern)
    except (regex.error, TypeError, ValueError):
        return None


CHECK_SECONDS = 0.25
"""The time all of one check's regular expressions may take together (R175: 300 strings each
taking its 0.05 s held the event loop 16 s); past it, what is left counts as matching."""

_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("schema_deadline")


@contextlib.contextmanager
def time_budget(seconds: float = CHECK_SECONDS) -> Iterator[None]:
    """The regular expressions of the checks made inside share `seconds`."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _search(pattern: str, text: str) -> bool | None:
    """Whether `pattern` is found in `text`; None when that cannot be told in time."""
    compiled = _compiled(pattern)
    if compiled is None:
        return None
    left = min(MATCH_SECONDS, _DEADLINE.get(math.inf) - time.monotonic())
    if left <= 0:
        return None
    try:
        return compiled.search(text, timeout=left) is not None
    except TimeoutError:
        return None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and _search(pattern, instance) is False:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if _search(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [
        name
        for name in instance
        if name not in known and not any(_search(p, name) is not False for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif not additional and extras:
        yield jsonschema.ValidationError(
            f"Additional properties are not allowed ({', '.join(map(repr, extras))})"
        )


def _left_to_the_server(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
    return iter(())


@functools.cache
def _extended(base: type[Any]) -> type[Any]:
    overrides = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "unevaluatedProperties": _left_to_the_server,
    }
    return jsonschema.validators.extend(
        base, {k: v for k, v in overrides.items() if k in base.VALIDATORS}
    )


def checker(schema: Mapping[str, Any]) -> type[Any]:
    """The validator class for `schema`'s draft, with the time-limited regular expressions.
    Check against `one_dialect(schema)`: jsonschema picks a subschema's validator by its own
    `$schema`, which would be the stock one, running patterns with `re` (review 34)."""
    return _extended(jsonschema.validators.validator_for(schema))


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_VALUES = ("const", "enum", "default", "examples")


def one_dialect(schema: Any, *, root: bool = True) -> Any:
    """The schema without a `$schema` keyword below its root, so every part of it is checked
    by the validator `checker` gives (a `$ref`'d definition included). Only the keyword goes:
    a property named "$schema" (a tsconfig.json's) and values (`const`, `enum`) stay."""
    if isinstance(schema, list):
        return [one_dialect(item, root=False) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema" and not root and isinstance(value, str):
            continue
        if key in _VALUES:
            kept[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            kept[key] = {name: one_dialect(sub, root=False) for name, sub in value.items()}
        else:
            kept[key] = one_dialect(value, root=False)
    return kept


EXPANDED_LIMIT = 5_000
"""Subschemas that may apply to one part of a call: checking it walks them all. Thirty levels
of `allOf: [{$ref: next}, {$ref: next}]` fit in 3 kB and apply a billion times to one value
(review 35: 15 levels held the event loop 0.8 s). What descends into the call (`properties`,
`items`) is bounded by the call's own size and is not counted: a recursive tree of blocks,
each with children of any block type, is an ordinary schema (review 37)."""

_SAME_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_PLACE = ("not", "if", "then", "else")


def _index(part: str) -> int:
    """A JSON pointer's array index (ASCII digits only: `²` is a digit to `str.isdigit` but
    `int` refuses it, and one listed tool's `$ref` to it failed every turn, review 36), or a
    number past any list."""
    return int(part) if part.isascii() and part.isdigit() else 1 << 62


def expands_within(schema: Any, limit: int = EXPANDED_LIMIT) -> bool:
    """Whether no part of `schema` has more than `limit` subschemas applying to the same value
    (through allOf/anyOf/oneOf/not/if/then/else and local `$ref`s)."""
    memo: dict[int, int] = {}

    def resolve(ref: str) -> Any:
        node: Any = schema
        for part in ref.removeprefix("#").strip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and _index(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def cost(node: Any, stack: frozenset[int]) -> int:
        if not isinstance(node, Mapping) or id(node) in stack:
            return 1
        if id(node) in memo:
            return memo[id(node)]
        inner = stack | {id(node)}
        total = 1
        children: list[Any] = []
        for key in _SAME_PLACE_LISTS:
            if isinstance(node.get(key), list):
                children += node[key]
        children += [node[key] for key in _SAME_PLACE if key in node]
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            children.append(resolve(ref))
        for child in children:
            total += cost(child, inner)
            if total > limit:
                break
        memo[id(node)] = total
        return total

    def every_part(node: Any, seen: set[int]) -> bool:
        if isinstance(node, list):
            return all(every_part(item, seen) for item in node)
        if not isinstance(node, Mapping) or id(node) in seen:
            return True
        seen.add(id(node))
        if cost(node, frozenset()) > limit:
            return False
        return all(every_part(value, seen) for key, value in node.items() if key not in _VALUES)

    return every_part(schema, set())


NO_REMOTE_REFS: referencing.Registry[Any] = referencing.Registry()
"""An empty registry: a `$ref` resolves inside the schema or not at all. Without one,
jsonschema fetched any URI a server named (loopback, metadata, file://), blocking the event
loop for as long as the URI took to answer."""

OUTPUT_SCHEMA_LIMIT = 64_000
"""Characters of an output schema (as JSON) past which a result is not checked against it."""


def output_problem(schema: Mapping[str, Any], instance: Any) -> str | None:
    """Why a result's structured content does not fit the tool's output schema, or None: it
    fits, or the schema is too long or expands too far to check without holding the event
    loop (the result is outside content either way). Patterns run with a time limit, as for
    arguments: the SDK's own check held every chat for as long as a server liked (R173)."""
    try:
        if len(json.dumps(schema, default=str)) > OUTPUT_SCHEMA_LIMIT:
            return None
        if not expands_within(schema):
            return None
        cleaned = one_dialect(schema)
        with time_budget():
            check = checker(cleaned)(cleaned, registry=NO_REMOTE_REFS)
            found = jsonschema.exceptions.best_match(check.iter_errors(instance))
    except Exception as exc:  # an invalid schema, a `$ref` that resolves nowhere
        return f"its output schema cannot be used ({type(exc).__name__})"
    return None if found is None else str(found.message)[:500]
