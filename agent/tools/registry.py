"""Tools are typed async functions; `@tool(risk=...)` turns one into a declared, schema'd Tool.

The JSON schema the model sees is built from the signature, and each parameter's description
from the Google-style docstring; a missing description or risk class fails at import time.

(Some 410 lines: the declaration, its schema and the checks of a call's arguments are one
contract with the model; split, the schema and what it promises would drift apart.)
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, get_type_hints

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agent.errors import ToolError
from agent.outbox import Outbox
from agent.ports import Remembering, Scheduling
from agent.sandbox import Sandbox
from agent.types import Address
from memory.clock import Clock
from memory.labels import Label
from memory.people import Chat, User
from memory.stores import Stores

if TYPE_CHECKING:
    from agent.mail.service import MailService

__all__ = [
    "Missing",
    "Risk",
    "Tool",
    "ToolContext",
    "ToolDeps",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSource",
    "tool",
]

log = logging.getLogger(__name__)


OUTPUT_LIMIT = 20_000
"""Characters of a tool's result the model gets when no sandbox says (STEWARD_TOOL_OUTPUT_LIMIT)."""

TOOL_LISTING = "mcp-tools:"
"""The source of MCP tools' own descriptions offered to the model with the tools (directly, or
once a search loaded them): the servers' words, tainting, but what any MCP client hands its
model; they do not make a tool that `reaches_out` ask."""
TOOL_SEARCH = "mcp-search:"
"""The source of a search result listing MCP tools (`mcp_tool_search`): it frees only its own
server's tools (one server's words chosen by the model's query could steer another's)."""


class Risk(StrEnum):
    """How much harm a tool can do, in rising order."""

    READ = "read"
    WRITE_INTERNAL = "write_internal"
    EXTERNAL_EFFECT = "external_effect"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class ToolDeps:
    """The services tools may use, built once at start-up by the composition root.

    Feature packages add their service here as an optional field, so a test or a slimmer build
    can leave it out and the tools that need it say so.
    """

    stores: Stores
    clock: Clock
    timezone: str
    outbox: Outbox | None = None
    sandbox: Sandbox | None = None
    scheduler: Scheduling | None = None
    memory: Remembering | None = None
    mail: MailService | None = None
    """The owner's mailbox (EMAIL_* settings); None when e-mail is not configured."""


@dataclass(frozen=True)
class ToolContext:
    """One tool call's view: the services, who and where the turn is for, and its trust state.

    `tainted` is true once the turn holds content from outside; `approved` is true only when the
    owner approved this exact call through the approval store.
    """

    deps: ToolDeps
    user: User
    chat: Chat | None
    address: Address | None
    turn_id: int
    tainted: bool
    approved: bool = False
    sources: tuple[str, ...] = ()
    """The outside sources the turn holds (its label); whatever the call stores carries them."""
    approved_fingerprint: str | None = None
    """An approved call's fingerprint as the owner approved it: a tool that reads its files
    again to act checks what it read against it."""

    @property
    def label(self) -> Label:
        return Label.of(self.tainted, self.sources)

    @property
    def stores(self) -> Stores:
        return self.deps.stores

    @property
    def clock(self) -> Clock:
        return self.deps.clock

    @property
    def timezone(self) -> str:
        return self.user.timezone or self.deps.timezone


@dataclass(frozen=True)
class ToolResult:
    """What a tool returns. `source` names where untrusted content came from (a URL, a file);
    a result with a source is wrapped as untrusted data for the model and taints the turn."""

    content: str
    is_error: bool = False
    source: str | None = None
    refused: bool = False
    """The policy refused the call without running it (or asking): the owner is told."""
    uncertain: bool = False
    """An error after which the action may have been done all the same (a mail whose
    server's confirmation was lost, an MCP call whose answer never came): said so."""
    partial: str | None = None
    """The action was done only in part (a mail some recipients refused): Steward's own words
    for the approver's line, never outside words (counts, not a server's text)."""


Handler = Callable[..., Awaitable[str | ToolResult]]
ActionHook = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]
Precheck = Callable[[ToolContext, dict[str, Any]], Awaitable[None]]
Aliases = Callable[[ToolContext, dict[str, Any]], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class Tool:
    """A declared tool. `untrusted_output` marks tools whose results come from outside (web,
    files, commands); `preview` shows a person what approving would do; `fingerprint` captures
    the state the action depends on (a file's content, a path's target), so an approval stops
    matching when that state changes; `precheck` refuses a call that could never run (a path
    outside the workspace) before anyone is asked about it.

    `owner_data` marks tools that read or act on the owner's own things (the workspace, the
    mailbox, the owner's MCP servers): another person's turn may not use them, and in a turn
    that holds outside content they ask first unless the reply goes to the owner alone (see
    agent.policy). `reaches_out` marks tools whose arguments leave Steward for another program
    that may pass them on (an MCP server): whatever their class, they ask in a turn that holds
    outside content, since the words that turn was given could make the arguments carry what
    the context holds (the owner's history, memories, files read) to whoever listens."""

    name: str
    description: str
    risk: Risk
    params: type[BaseModel]
    handler: Handler
    untrusted_output: bool = False
    preview: ActionHook | None = None
    fingerprint: ActionHook | None = None
    precheck: Precheck | None = None
    owner_data: bool = False
    reaches_out: bool = False
    still_matches: Callable[[str, str], bool] | None = None
    """`(approved, current)` fingerprints that differ, yet the approved call may still run,
    as the tool runs it then (shell: only `inbox/` changed, so it runs with `inbox/` hidden)."""
    aliases: Aliases | None = None
    """The same call's arguments as it reaches its target (a path through a link, as the
    file it leads to): a rule that denies or asks matches these too."""
    paged: bool = False
    """The tool fits its own output to its limit and says how to read on (`read_file`,
    `mail_read`): the registry's cut at STEWARD_TOOL_OUTPUT_LIMIT leaves it alone (R178)."""

    @property
    def audit_detail(self) -> dict[str, Any]:
        """Extra fields for this tool's audit events (an MCP tool names its server)."""
        return {}

    def schema(self) -> dict[str, Any]:
        """The tool as the Messages API declares it: built once per tool (pydantic's schema
        generation is the costly part of offering tools) and compact, since it is resent on
        every model call. A new top-level dict each time (a caller may mark it for the prompt
        cache); what is inside is shared and must not be changed."""
        return dict(_compact_schema(self))

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments checked against the schema; ToolError says what is wrong."""
        try:
            values = self.params.model_validate(arguments).model_dump()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None
        for name, value in values.items():  # checked here, not in each schema, which costs tokens
            if type(value) is int and not _SQLITE_INT[0] <= value <= _SQLITE_INT[1]:
                raise ToolError(  # 2**63 as an id crashed its lookup (OverflowError, R199)
                    f"invalid arguments for {self.name}: {name}: no such number here (too large)"
                )
        return values

    async def run(self, ctx: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        try:
            outcome = await self.handler(ctx, **self.validate(arguments))
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True, source=exc.source, uncertain=exc.uncertain)
        except OSError as exc:  # e.g. a file name too long for the file system: tell the model
            return ToolResult(f"{self.name} failed: {exc.strerror or exc}", is_error=True)
        except Exception as exc:  # a fault of ours or a library's: the turn goes on, told
            log.exception("tool %s failed", self.name)
            return ToolResult(
                f"{self.name} failed unexpectedly ({type(exc).__name__}); the details are in "
                "Steward's log",
                is_error=True,
            )
        result = outcome if isinstance(outcome, ToolResult) else ToolResult(outcome)
        limit = ctx.deps.sandbox.output_limit if ctx.deps.sandbox else OUTPUT_LIMIT
        if len(result.content) > limit and not self.paged:  # R177: 20 hits were 78,705 chars
            hidden = len(result.content) - limit
            cut = result.content[:limit] + (
                f"\n[cut: {hidden:,} of {len(result.content):,} characters not shown "
                "(STEWARD_TOOL_OUTPUT_LIMIT)]"
            )
            result = replace(result, content=cut)
        if self.untrusted_output and result.source is None:
            # an error the handler returned (not raised) may quote what it read: a failed
            # command's output, a server's error page; only a raised ToolError is our own words
            result = replace(result, source=self.name)
        return result


_SQLITE_INT = (-(2**63), 2**63 - 1)
"""The integers SQLite stores; an argument outside them is no id nor count of ours."""


@functools.cache
def _compact_schema(tool: Tool) -> dict[str, Any]:
    """Pydantic's JSON schema without what tells the model nothing: titles, `additionalProperties`
    (arguments are validated against the model, which forbids extras, whatever the model sends)
    and the `null` branch of an optional parameter (it is optional by not being required)."""
    schema = tool.params.model_json_schema()
    schema.pop("title", None)
    schema.pop("additionalProperties", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        branches = prop.get("anyOf")
        if branches and prop.get("default", ...) is None and {"type": "null"} in branches:
            rest = [b for b in branches if b != {"type": "null"}]
            if len(rest) == 1:
                del prop["anyOf"], prop["default"]
                prop.update(rest[0])
    return {"name": tool.name, "description": tool.description, "input_schema": schema}


def _unwrap(text: str) -> str:
    """A docstring's prose as the model should read it: lines wrapped for the source joined
    again, paragraphs (blank lines) kept."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def tool(
    *,
    risk: Risk,
    name: str | None = None,
    untrusted_output: bool = False,
    preview: ActionHook | None = None,
    fingerprint: ActionHook | None = None,
    precheck: Precheck | None = None,
    owner_data: bool = False,
    still_matches: Callable[[str, str], bool] | None = None,
    aliases: Aliases | None = None,
    paged: bool = False,
) -> Callable[[Handler], Tool]:
    """Declare an async function `f(ctx: ToolContext, ...) -> str` as a tool of a risk class."""

    def decorate(func: Handler) -> Tool:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"tool {func.__name__} must be an async function")
        doc = docstring_parser.parse(inspect.getdoc(func) or "")
        described = {p.arg_name: (p.description or "").strip() for p in doc.params}
        hints = get_type_hints(func, include_extras=True)  # Annotated: a canonical form
        parameters = list(inspect.signature(func).parameters.values())
        if not parameters or hints.get(parameters[0].name) is not ToolContext:
            raise TypeError(f"tool {func.__name__}: the first parameter must be ctx: ToolContext")
        fields: dict[str, Any] = {}
        for param in parameters[1:]:
            description = described.get(param.name)
            if not description:
                raise TypeError(
                    f"tool {func.__name__}: parameter {param.name!r} has no description"
                )
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (
                hints[param.name],
                Field(default, description=_unwrap(description)),
            )
        summary = _unwrap("\n".join(filter(None, [doc.short_description, doc.long_description])))
        if not summary:
            raise TypeError(f"tool {func.__name__} needs a docstring saying what it does")
        params = create_model(  # type: ignore[call-overload]
            f"{func.__name__}_params", __config__=ConfigDict(extra="forbid"), **fields
        )
        return Tool(
            name or func.__name__,
            summary,
            risk,
            params,
            func,
            untrusted_output=untrusted_output,
            preview=preview,
            fingerprint=fingerprint,
            precheck=precheck,
            owner_data=owner_data,
            still_matches=still_matches,
            aliases=aliases,
            paged=paged,
        )

    return decorate


Offered = Callable[[str], bool] | None
"""Which of a dynamic source's tools a turn is offered, by name (None: all of them)."""


class Missing(StrEnum):
    """Why a dynamic source's tool is not there."""

    DOWN = "down"  # its server is not running (starting, restarting): it may come back
    GONE = "gone"  # its server is up and has no tool of that name now
    UNKNOWN = "unknown"  # no server of that name is set up


class ToolSource(Protocol):
    """Tools that come and go at run time (MCP servers): looked up after the built-in ones, so
    none can shadow a built-in; `schemas(turn_id)` is what it offers in that turn."""

    def get(self, name: str) -> Tool | None: ...

    def schemas(self, turn_id: int | None = None, only: Offered = None) -> list[dict[str, Any]]:
        """`only`: offer just the tools it says yes to (another person's turn), directly."""
        ...

    def offered_sources(self, turn_id: int | None = None, only: Offered = None) -> tuple[str, ...]:
        """The outside sources whose words `schemas(turn_id)` carries (they taint the turn)."""
        ...

    def missing(self, name: str) -> Missing | None:
        """Why a tool of this source's by that name cannot be had now (None: not its name)."""
        ...


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._sources: list[ToolSource] = []
        for item in tools:
            self.register(item)

    def add_source(self, source: ToolSource) -> None:
        self._sources.append(source)

    def register(self, item: Tool) -> None:
        if item.name in self._tools:
            raise ValueError(f"tool {item.name!r} is declared twice")
        self._tools[item.name] = item

    def get(self, name: str) -> Tool | None:
        found = self._tools.get(name)
        for source in self._sources:
            if found is not None:
                break
            found = source.get(name)
        return found

    def missing(self, name: str) -> Missing | None:
        """Why a tool that is not there is not (its server down, gone, or no longer set up)."""
        for source in self._sources:
            why = source.missing(name)
            if why is not None:
                return why
        return None

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def schemas(self, turn_id: int | None = None, only: Offered = None) -> list[dict[str, Any]]:
        """The `tools` list for the Messages API; forbidden tools are never offered, and of
        the dynamic sources' (MCP servers') only what `only` says yes to, when given."""
        offered = [t.schema() for t in self._tools.values() if t.risk is not Risk.FORBIDDEN]
        for source in self._sources:
            offered += [s for s in source.schemas(turn_id, only) if s["name"] not in self._tools]
        return offered

    def offered_sources(self, turn_id: int | None = None, only: Offered = None) -> tuple[str, ...]:
        """Where the words of the offered dynamic tools come from (`mcp:<server>`)."""
        return tuple(s for source in self._sources for s in source.offered_sources(turn_id, only))
