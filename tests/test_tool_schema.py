"""What the model is offered per tool: compact (it is resent on every call) and still exact."""

from __future__ import annotations

import json

import pytest

from agent.errors import ToolError
from agent.tools import default_registry
from agent.tools.registry import Risk, ToolContext, tool


@tool(risk=Risk.READ)
async def _probe(ctx: ToolContext, query: str, zone: str | None = None, limit: int = 3) -> str:
    """Look something up, a first sentence that is wrapped
    over two source lines.

    A second paragraph.

    Args:
        query: What to look for,
            wrapped too.
        zone: Optional zone.
        limit: How many.
    """
    return query


def test_an_optional_parameter_is_optional_by_not_being_required() -> None:
    schema = _probe.schema()["input_schema"]
    assert schema["required"] == ["query"]
    assert schema["properties"]["zone"] == {"description": "Optional zone.", "type": "string"}
    assert schema["properties"]["limit"] == {
        "default": 3,
        "description": "How many.",
        "type": "integer",
    }
    assert "additionalProperties" not in schema and "title" not in schema


def test_wrapped_docstring_lines_are_joined_and_paragraphs_kept() -> None:
    offered = _probe.schema()
    assert offered["description"] == (
        "Look something up, a first sentence that is wrapped over two source lines.\n\n"
        "A second paragraph."
    )
    assert offered["input_schema"]["properties"]["query"]["description"] == (
        "What to look for, wrapped too."
    )


def test_arguments_are_still_checked_strictly() -> None:
    """The schema no longer says additionalProperties: false; validation still refuses extras
    and a null where the model offered none is still accepted for an optional parameter."""
    with pytest.raises(ToolError, match=r"(?i)extra inputs"):
        _probe.validate({"query": "x", "sneaky": True})
    assert _probe.validate({"query": "x", "zone": None})["zone"] is None


def test_a_caller_changing_the_offered_schema_does_not_change_the_next_one() -> None:
    first = _probe.schema()
    first["cache_control"] = {"type": "ephemeral"}
    assert "cache_control" not in _probe.schema()


def test_the_default_tools_fit_the_token_budget() -> None:
    """The built-in tools' declarations, as sent: 7,662 characters when this was written
    (8,511 before the schemas were made compact). A regression shows here first."""
    size = sum(len(json.dumps(s)) for s in default_registry(mail=False).schemas())
    assert size <= 7_800, size
