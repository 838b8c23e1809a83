"""MCP tools as Steward tools: `mcp__<server>__<tool>`, the server's input schema, a risk class
from policy.toml, and results that are always outside content.

Everything a server sends is the server's words: tool results, resources and errors are fenced
and taint the turn (`source = "mcp:<server>"`), and the descriptions offered to the model are
cut short and marked as coming from the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import mcp.types as mt
from pydantic import BaseModel, ConfigDict

from agent.cards import escape_invisible
from agent.mcp.schema_check import (
    NO_REMOTE_REFS,
    checker,
    expands_within,
    one_dialect,
    time_budget,
)
from agent.tools.registry import Risk, Tool, ToolContext, ToolError, ToolResult

__all__ = [
    "DESCRIPTION_LIMIT",
    "SCHEMA_LIMIT",
    "McpTool",
    "card_preview",
    "fingerprint",
    "result_text",
    "steward_name",
    "unusable",
]

DESCRIPTION_LIMIT = 400
NAME_LIMIT = 64  # the Messages API's limit on a tool name
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def steward_name(server: str, tool: str) -> str | None:
    """`mcp__<server>__<tool>`, with characters the API refuses replaced; None if too long."""
    name = f"mcp__{server}__{_UNSAFE.sub('_', tool)}"
    return name if len(name) <= NAME_LIMIT else None


def unusable(server: str, listed: mt.Tool) -> str:
    """Why `McpTool.of` offered no tool for `listed`."""
    if steward_name(server, listed.name) is None:
        return "name too long"
    if not expands_within(_clean_schema(listed.input_schema)[0]):
        return "input schema too complex to check (its references expand past 5,000 parts)"
    return f"input schema over {SCHEMA_LIMIT:,} characters"


class _AnyArguments(BaseModel):
    model_config = ConfigDict(extra="allow")


Invoke = Callable[["McpTool", ToolContext, dict[str, Any]], Awaitable[ToolResult]]


async def _unbound(ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
    raise ToolError("this MCP tool is not connected")


@dataclass(frozen=True)
class McpTool(Tool):
    """One tool of one MCP server. `read_only_hint` and `open_world_hint` are the server's
    claims, shown by `steward mcp check` as suggestions and never used to decide anything: a
    tool's class, and whether its arguments stay with its server (`closed_world`), are the
    owner's rules."""

    server: str = ""
    remote: str = ""
    """The tool's name on its server, as sent to it; shown and recorded only as `shown_remote`."""
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    read_only_hint: bool | None = None
    open_world_hint: bool | None = None
    invoke: Invoke | None = None
    target: str = ""
    """What the server runs or where it is (as written in the config), bound into approvals."""
    checked_schema: Mapping[str, Any] = field(default_factory=dict)
    """`input_schema` in one dialect: what arguments are checked against here."""
    redact: Callable[[str], str] = field(default=lambda text: text, repr=False)
    """Takes the server's credentials out of text quoting its schema (a check's error)."""

    @classmethod
    def of(
        cls,
        server: str,
        target: str,
        listed: mt.Tool,
        risk: Risk,
        invoke: Invoke,
        redact: Callable[[str], str] = lambda text: text,
    ) -> McpTool | None:
        """The tool as offered; None when it cannot be. What the model reads of it (name,
        description, schema) has the server's credentials taken out (R143: a server quoting
        the header it was sent in a description handed the token to the model and the
        database); its identity for approvals is the schema as listed."""
        name = steward_name(server, redact(listed.name))
        if name is None:
            return None
        about = redact((listed.description or listed.title or listed.name).strip())
        about = escape_invisible(about)
        if len(about) > DESCRIPTION_LIMIT:
            about = about[: DESCRIPTION_LIMIT - 1] + "…"
        hint = listed.annotations.read_only_hint if listed.annotations else None
        schema, identity = _clean_schema(listed.input_schema)
        if len(json.dumps(schema, default=str)) > SCHEMA_LIMIT or not expands_within(schema):
            return None
        bound = fingerprint(server, target, listed.name, identity)
        schema = _redacted(schema, redact)

        shown = redact(listed.name)  # R173: a name quoting the server's token went on the card

        async def preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
            return card_preview(server, target, shown, arguments)

        async def fingerprinted(ctx: ToolContext, arguments: dict[str, Any]) -> str:
            return bound

        return cls(
            name=name,
            description=f"[from MCP server {server}] {about}",
            risk=risk,
            params=_AnyArguments,
            handler=_unbound,
            untrusted_output=True,
            preview=preview,
            fingerprint=fingerprinted,
            owner_data=True,  # the server acts with the owner's accounts and files
            reaches_out=True,  # its arguments leave Steward (unless the owner's rule says not)
            server=server,
            remote=listed.name,
            input_schema=schema,
            read_only_hint=hint,
            open_world_hint=listed.annotations.open_world_hint if listed.annotations else None,
            invoke=invoke,
            target=target,
            checked_schema=one_dialect(schema),
            redact=redact,
        )

    @property
    def shown_remote(self) -> str:
        """`remote` as it may be shown, logged or stored: the server's credentials taken out."""
        return self.redact(self.remote)

    @property
    def audit_detail(self) -> dict[str, Any]:
        return {"server": self.server, "server_tool": self.shown_remote}

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": dict(self.input_schema),
        }

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ToolError(f"invalid arguments for {self.name}: expected an object")
        try:
            # An empty registry: a `$ref` resolves inside the schema or not at all. Without
            # one, jsonschema fetched any URI a server named (loopback, metadata, file://),
            # blocking the event loop for as long as the URI took to answer. The checker's
            # regular expressions have a time limit (agent/mcp/schema_check.py).
            with time_budget():
                check = checker(self.checked_schema)(self.checked_schema, registry=NO_REMOTE_REFS)
                check.validate(arguments)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "input"
            raise ToolError(  # quotes the server's schema (its enums, patterns): its words
                f"invalid arguments for {self.name}: {where}: {self.redact(exc.message)}",
                source=f"mcp:{self.server}",
            ) from None
        except Exception:  # any fault of the server's schema, not of the call
            pass  # a broken schema (bad $ref, unknown type): the server checks its own input
        return arguments

    async def run(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        try:
            checked = self.validate(arguments)
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True, source=exc.source)
        if self.invoke is None:
            return ToolResult(f"{self.name} is not connected", is_error=True)
        return await self.invoke(self, ctx, checked)


SCHEMA_LIMIT = 16_000
"""A tool whose input schema is longer than this (as JSON) is not offered: it would ride along
in every model request of a turn that loads it (a 1 MB schema: a megabyte a request)."""


def _clean_schema(schema: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema offered (an object's, as the API takes), and the one an approval is bound
    to: the same, but for a schema not an object's, bound as the server listed it (R143: a
    `["object"]` type was blanked, so a parameter added later kept an "always" rule)."""
    cleaned = dict(schema or {})
    cleaned.pop("title", None)
    cleaned.setdefault("type", "object")
    kind = cleaned.get("type")
    if isinstance(kind, list) and "object" in kind:
        cleaned["type"] = "object"  # arguments are always an object
    if cleaned.get("type") != "object":
        return {"type": "object", "properties": {}}, {"listed": dict(schema or {})}
    return cleaned, cleaned


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "***" if redact(str(value)) != str(value) else value  # a PIN in a default
    if isinstance(value, Mapping):
        return {redact(str(k)): _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, redact) for v in value]
    return value


def card_preview(server: str, target: str, tool: str, arguments: Mapping[str, Any]) -> str:
    """What the approval card shows: the server, its tool, and the exact arguments. The tool's
    name is the server's words: one with a line break (or another control character) is shown
    quoted and escaped, so it cannot draw lines of its own on the card."""
    shown = json.dumps(arguments, indent=2, ensure_ascii=False, sort_keys=True)
    return f"MCP server: {server} ({target})\ntool: {one_line_name(tool)}\narguments:\n{shown}"


def one_line_name(name: str) -> str:
    """A server's tool name on one line: as it is, or JSON-quoted when it holds a control or
    line-separating character."""
    return json.dumps(name) if _LINE_BREAKING.search(name) else name


_LINE_BREAKING = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def fingerprint(server: str, target: str, tool: str, schema: Mapping[str, Any]) -> str:
    """What an approval is bound to besides the arguments: the server as configured and the
    tool's schema, so a different server or a changed tool no longer matches."""
    canonical = json.dumps([server, target, tool, schema], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def result_text(result: mt.CallToolResult) -> str:
    """Every block of a result as text: text as it is, media and binary resources described."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mt.TextContent):
            parts.append(block.text)
        elif isinstance(block, mt.ImageContent | mt.AudioContent):
            kind = "image" if isinstance(block, mt.ImageContent) else "audio"
            parts.append(f"[{kind} {block.mime_type}, {_decoded_size(block.data)} bytes]")
        elif isinstance(block, mt.ResourceLink):
            parts.append(f"[resource link {block.uri} {block.name}]")
        elif isinstance(block, mt.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mt.TextResourceContents):
                parts.append(f"[resource {resource.uri}]\n{resource.text}")
            else:
                size = _decoded_size(getattr(resource, "blob", ""))
                parts.append(f"[binary resource {resource.uri}, {size} bytes]")
        else:
            parts.append(f"[{getattr(block, 'type', 'content')}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts) if parts else "(no content)"


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except ValueError:
        return len(data)
