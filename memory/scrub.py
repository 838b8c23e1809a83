"""Taking forgotten words out of stored JSON (turn transcripts).

A transcript is JSON: replacing the text in the raw string could split an escape sequence, so
each candidate row is parsed, every string in it has the text replaced, and it is written back.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_needle", "scrub_json"]


def json_needle(text: str) -> str:
    """How `text` appears inside a JSON string written without ASCII escapes: a cheap filter
    for the rows worth parsing."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _scrubbed(value: Any, text: str, placeholder: str, everywhere: bool) -> Any:
    """`everywhere`: every string; else only inside tool results (a search that quoted it),
    never what the model asked a tool to do (the record of an approved action)."""
    if isinstance(value, str):
        return value.replace(text, placeholder) if everywhere else value
    if isinstance(value, list):
        return [_scrubbed(item, text, placeholder, everywhere) for item in value]
    if isinstance(value, dict):
        inside = everywhere or value.get("type") == "tool_result"
        return {key: _scrubbed(item, text, placeholder, inside) for key, item in value.items()}
    return value


def scrub_json(
    document: str,
    text: str,
    placeholder: str,
    *,
    results_only: bool = False,
    whole_head: int = 0,
) -> str | None:
    """`document` with `text` replaced in every string of it (`results_only`: in tool
    results only, but for the first `whole_head` items of a list: a waiting turn's prompt);
    None when it holds no such string (or is not JSON)."""
    try:
        parsed = json.loads(document)
    except ValueError:
        return None
    if isinstance(parsed, list) and whole_head > 0:
        scrubbed: Any = [
            _scrubbed(item, text, placeholder, index < whole_head or not results_only)
            for index, item in enumerate(parsed)
        ]
    else:
        scrubbed = _scrubbed(parsed, text, placeholder, not results_only)
    if scrubbed == parsed:
        return None
    return json.dumps(scrubbed, ensure_ascii=False)
