"""Taking forgotten words out of stored JSON (turn transcripts, approvals' arguments).

A transcript is JSON: replacing the text in the raw string could split an escape sequence, so
each candidate row is parsed, every string in it has the text replaced, and it is written back.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_needle", "scrub_json"]


def json_needle(text: str, *, ascii_only: bool = False) -> str:
    """How `text` appears inside a JSON string (`ascii_only`: written with json.dumps'
    default ASCII escapes): a cheap filter for the rows worth parsing."""
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def _scrubbed(value: Any, text: str, placeholder: str) -> Any:
    if isinstance(value, str):
        return value.replace(text, placeholder)
    if isinstance(value, list):
        return [_scrubbed(item, text, placeholder) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item, text, placeholder) for key, item in value.items()}
    return value


def scrub_json(
    document: str, text: str, placeholder: str, *, ascii_only: bool = False
) -> str | None:
    """`document` with `text` replaced in every string of it, written back as it was
    (`ascii_only` as json.dumps' default); None when it holds no such string (or is not
    JSON)."""
    try:
        parsed = json.loads(document)
    except ValueError:
        return None
    scrubbed = _scrubbed(parsed, text, placeholder)
    if scrubbed == parsed:
        return None
    return json.dumps(scrubbed, ensure_ascii=ascii_only)
