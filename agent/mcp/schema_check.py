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

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import regex

__all__ = ["checker", "expands_within", "one_dialect"]

MATCH_SECONDS = 0.05


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern)
    except (regex.error, TypeError, ValueError):
        return None


def _search(pattern: str, text: str) -> bool | None:
    """Whether `pattern` is found in `text`; None when that cannot be told in time."""
    compiled = _compiled(pattern)
    if compiled is None:
        return None
    try:
        return compiled.search(text, timeout=MATCH_SECONDS) is not None
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


def one_dialect(schema: Any, *, root: bool = True) -> Any:
    """The schema without a `$schema` below its root, so every part of it is checked by the
    validator `checker` gives (a `$ref`'d definition included)."""
    if isinstance(schema, Mapping):
        return {
            key: one_dialect(value, root=False)
            for key, value in schema.items()
            if root or key != "$schema"
        }
    if isinstance(schema, list):
        return [one_dialect(item, root=False) for item in schema]
    return schema


EXPANDED_LIMIT = 5_000
"""Parts a schema may have once its `$ref`s are followed: checking a call walks them all.
Thirty levels of `allOf: [{$ref: next}, {$ref: next}]` fit in 3 kB and expand to a billion
(review 35: 15 levels already held the event loop 0.8 s, each level more doubling it)."""


def expands_within(schema: Any, limit: int = EXPANDED_LIMIT) -> bool:
    """Whether `schema`, with its local `$ref`s followed (a ref seen on the current path is a
    loop, counted once), has at most `limit` parts."""
    budget = [limit]

    def resolve(ref: str) -> Any:
        node: Any = schema
        for part in ref.removeprefix("#").strip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def walk(node: Any, path: frozenset[str]) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#") and ref not in path:
                target = resolve(ref)
                if target is not None and not walk(target, path | {ref}):
                    return False
            return all(walk(value, path) for key, value in node.items() if key != "$ref")
        if isinstance(node, list):
            return all(walk(item, path) for item in node)
        return True

    return walk(schema, frozenset())
