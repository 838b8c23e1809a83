"""Who decides whether a tool call runs: allow, ask the owner, or deny.

The policy file (`policy.toml` in the data directory, written with commented defaults on first
run) maps tools and argument patterns to decisions, globally and per user. Rules are checked in
order, a user's own rules first; the first match decides; otherwise the tool's risk class does.
Three things no file can change: a `forbidden` tool is always denied; a tainted turn (one that
holds content from outside) never runs anything above `read` without asking (but for an MCP
tool when all it holds from outside is that tool's own server's descriptions of its tools:
`_own_listing_only`); and rules match
the parsed argv of a shell command, never a string prefix.

(Over 400 lines: the rule syntax, its validation with one-line errors, and the decision it feeds
are one contract; splitting them would spread it.)
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import glob
import json
import os
import re
import shlex
import stat
import tempfile
import threading
import tomllib
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import getaddresses
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.errors import PolicyError
from agent.tools.canonical import canonical_path, canonical_url
from agent.tools.registry import TOOL_LISTING, TOOL_SEARCH, Risk, Tool, ToolContext
from memory.people import Identity

__all__ = [
    "DEFAULT_POLICY",
    "Decision",
    "OwnerChats",
    "Policy",
    "PolicyEngine",
    "PolicyError",
    "PolicyFile",
    "Rule",
    "UserPolicy",
    "Verdict",
    "exact_value",
    "load_policy",
    "policy_in_force",
    "shell_argv",
]


class Decision(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str


_STRICTNESS = {Decision.ALLOW: 0, Decision.ASK: 1, Decision.DENY: 2}


SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", ">", ">>", "<", "<<", "(", ")", "`"})


def exact_value(value: Any) -> str:
    """An argument as an "always" rule holds it, one text per value and type: a string as it
    is, anything else as JSON. With str() a rule for `false` or `null` also allowed the strings
    "False" and "None", which a server may read as true. (A string that starts like one of the
    marks gets its own, so no string can pass for another value.)"""
    if isinstance(value, str):
        return f"str:{value}" if value.startswith(("json:", "str:")) else value
    return "json:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


def _as_said(pattern: str) -> str:
    """An "always" rule's value as the call had it: not glob-escaped, a non-string as its JSON
    (R134: `labels='json:[[]"bug","p1"]'` was shown for ["bug","p1"])."""
    value = re.sub(r"\[(.)\]", r"\1", pattern)
    if value.startswith("json:"):
        return value.removeprefix("json:")
    return repr(value.removeprefix("str:"))


def _split(command: str, commenters: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = commenters
    return list(lexer)


def shell_argv(command: str) -> list[str]:
    """Parse a command line the way the shell tool runs it; operators become their own tokens.

    A `#` outside quotes is refused (ValueError): shlex reads a comment from any `#`, even inside
    a word, where a shell and the person reading the card read a letter, so the card's
    `rm -rf notes/#draft#` ran as `rm -rf notes/` (review 68). Quoted or escaped, it is a letter.
    """
    tokens = _split(command, commenters="")
    if "#" in command and _split(command, commenters="#") != tokens:
        raise ValueError(
            "“#” outside quotes (a shell may read the rest as a comment): quote the word, as "
            "in 'notes/#draft#', or leave the comment out"
        )
    if "`" in command or "$(" in command:
        tokens.append("`")
    return tokens


class Rule(BaseModel):
    """One line of policy: a tool (glob), argument patterns (globs), and a decision.

    `argv` matches a shell command's parsed arguments token by token and exactly: the program,
    its subcommand and every argument as written; a `*` token stands for one whole argument,
    and as the last token for any number of them (`git status *`). A glob character inside a
    token (`status*`, `l?`) is refused when the file loads, except a last token `word*` from
    older files, read as `word *`; quote a token to mean a literal `*` (`ls '*.md'`).
    A rule allows a command with network access only if it says `network = true`.
    `to_owner = true` matches a message whose destination is one of the owner's own chats.
    `exact = true` (what "allow always" writes) matches only a call with no arguments beyond
    those in `args`: an MCP tool takes any extra key, and an approved call with one more
    argument is another action (a shell rule's `argv` is exact as written). Such a rule wins
    over the rule asking that comes first, unless a rule denying comes before it.
    `risk` (only for `mcp__*` tools, whose servers declare none) sets the risk class of the
    MCP tools the rule names; such a rule needs no decision (see `PolicyFile.risk_for`).
    `closed_world = true` beside it says, on the owner's word (a server's `openWorldHint` is
    only shown by `steward mcp check`), that those tools' arguments stay with their server:
    a `read` one then runs unasked in a turn that holds outside content too.
    `confined = true` (what "allow always" writes for a shell command approved while commands
    ran confined) matches only while they still do: moved to where they run unconfined
    (`STEWARD_SHELL_UNCONFINED`), the command is asked about again (review 75).
    `identity` (what "allow always" writes for an MCP tool) is the tool as it was approved:
    its server, what the server runs or where it is, its remote name and its schema, hashed.
    A server that swaps the tool behind the same name (a new argument with a default of its
    own), or a configuration that points the name elsewhere, makes it another tool: the rule
    no longer matches, and the call is asked about again.
    """

    model_config = ConfigDict(extra="forbid")

    tool: str
    decision: Decision | None = None
    risk: Risk | None = None
    argv: str | None = None
    args: dict[str, str] = Field(default_factory=dict)
    network: bool | None = None
    to_owner: bool | None = None
    exact: bool = False
    identity: str | None = None
    closed_world: bool | None = None
    confined: bool | None = None
    note: str = ""

    @model_validator(mode="after")
    def _decides_something(self) -> Rule:
        if self.risk is not None and not self.tool.startswith("mcp__"):
            raise ValueError('risk = … is for MCP tools only (tool = "mcp__<server>__…")')
        if self.identity is not None and not self.tool.startswith("mcp__"):
            raise ValueError('identity = … is for MCP tools only (tool = "mcp__<server>__…")')
        if self.confined is not None and (self.tool != "shell" or self.decision != "allow"):
            # on a deny rule it would lift the deny exactly where commands run unconfined
            raise ValueError("confined = … is for rules that allow the shell tool only")
        if self.closed_world is not None and self.risk is None:
            raise ValueError("closed_world = … goes beside risk = … (for mcp__ tools)")
        if self.decision is None and self.risk is None:
            raise ValueError("a rule needs a decision (or, for mcp__ tools, a risk)")
        return self

    @field_validator("argv")
    @classmethod
    def _parsable(cls, value: str | None) -> str | None:
        if value is not None:
            argv_pattern(value)
        return value

    def describe(self) -> str:
        parts = [f"tool={self.tool}"]
        if self.argv is not None:
            parts.append(f"argv={self.argv!r}")
        parts += [f"{k}={_as_said(v) if self.exact else repr(v)}" for k, v in self.args.items()]
        if self.network is not None:
            parts.append(f"network={str(self.network).lower()}")
        if self.confined:
            parts.append("confined")
        if self.to_owner is not None:
            parts.append(f"to_owner={str(self.to_owner).lower()}")
        if self.exact and self.argv is None:  # an argv is exact as it is written
            parts.append("exact")
        if self.identity is not None:  # the tool as approved: another version is not allowed
            parts.append(f"identity={self.identity[:8]}…")
        if self.risk is not None:
            parts.append(f"risk={self.risk.value}")
        if self.closed_world is not None:
            parts.append(f"closed_world={str(self.closed_world).lower()}")
        return f"{' '.join(parts)} → {self.decision.value if self.decision else 'its risk default'}"


class UserPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _no_risk(cls, rules: list[Rule]) -> list[Rule]:
        if any(rule.risk is not None for rule in rules):
            raise ValueError("risk = … goes in the top-level [[rules]]: a tool has one risk class")
        return rules


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: dict[Risk, Decision] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    users: dict[str, UserPolicy] = Field(default_factory=dict)

    @field_validator("users")
    @classmethod
    def _identities(cls, users: dict[str, UserPolicy]) -> dict[str, UserPolicy]:
        """Each section under the identity as channels report it (`Telegram:2002` and
        `slack:u0ann` were kept as written, and silently matched nobody); two spellings of
        one identity are one section."""
        sections: dict[str, UserPolicy] = {}
        for key, section in users.items():
            try:
                name = str(Identity.parse(key).canonical())
            except ValueError as exc:
                raise ValueError(f"[users.{json.dumps(key)}]: {exc}") from None
            if name in sections:
                section = UserPolicy(rules=[*sections[name].rules, *section.rules])
            sections[name] = section
        return sections

    def default_for(self, risk: Risk) -> Decision:
        if risk is Risk.FORBIDDEN:
            return Decision.DENY
        fallback = {
            Risk.READ: Decision.ALLOW,
            Risk.WRITE_INTERNAL: Decision.ALLOW,
            Risk.EXTERNAL_EFFECT: Decision.ASK,
        }
        return self.defaults.get(risk, fallback[risk])

    def risk_for(self, tool: str) -> Risk | None:
        """The risk class rules give an MCP tool: a rule naming exactly this tool wins over a
        pattern (`mcp__github__*`); among patterns, the first in the file. None: no rule."""
        rule = self._risk_rule(tool)
        return rule.risk if rule is not None else None

    def decided_for(self, tool: str) -> tuple[Decision | None, int]:
        """For `steward mcp check` (R134: it showed the default beside a deny rule): the decision
        of the first owner's rule naming this tool for every call, and how many rules name it
        for some calls only (their arguments, one identity of the tool)."""
        some = 0
        for rule in self.rules:
            if rule.decision is None or not fnmatch.fnmatchcase(tool, rule.tool):
                continue
            if rule.args or rule.exact or rule.identity is not None or rule.argv is not None:
                some += 1
                continue
            return rule.decision, some
        return None, some

    def closed_world(self, tool: str) -> bool:
        """Whether the owner said this MCP tool's arguments stay with its server (the rule
        that gives it its risk class, as `risk_for` picks it)."""
        rule = self._risk_rule(tool)
        return bool(rule is not None and rule.closed_world)

    def _risk_rule(self, tool: str) -> Rule | None:
        ruled = [r for r in self.rules if r.risk is not None]
        for rule in ruled:
            if rule.tool == tool:
                return rule
        for rule in ruled:
            if fnmatch.fnmatchcase(tool, rule.tool):
                return rule
        return None


DEFAULT_POLICY = """\
# Steward's policy: which tool calls run on their own, which ask you first, which never run.
# Decisions: "allow", "ask", "deny". Check this file with `steward policy check`.
#
# What no rule can change:
# - a tool of risk class "forbidden" never runs;
# - in a turn that holds content from outside (a web page, a feed, a file, another person's
#   message) every tool above "read" asks, even where a rule says "allow";
# - approvals are bound to the exact action and come only from the owner (or STEWARD_APPROVERS).

# What happens when no rule matches, by risk class.
[defaults]
read = "allow"
write_internal = "allow"
external_effect = "ask"

# Rules are checked in order; the first match decides. `tool` and `args` patterns are globs.
# `argv` matches a shell command's parsed arguments exactly, token by token; `*` stands for one
# whole argument, and as the last token for any number ("git status *" allows `git status` and
# `git status --short`, never `git status-x` or `git status; curl ...`; "ls *" never `lsof`).
# A rule allows a command that asks for network access only with `network = true`.

[[rules]]
tool = "shell"
argv = "git status *"
decision = "allow"

[[rules]]
tool = "shell"
argv = "ls *"
decision = "allow"

[[rules]]
tool = "send_message"
to_owner = true
decision = "allow"

# E-mail whose every recipient is your own address (EMAIL_FROM) goes out unasked in a clean
# turn; any other recipient asks, and a turn that read mail always asks.
[[rules]]
tool = "mail_send"
to_owner = true
decision = "allow"

# A fetch runs unasked in a clean turn; what it reads taints the turn, so a second fetch in
# the same turn (which could carry data out in its URL) asks.
[[rules]]
tool = "web_fetch"
decision = "allow"

# MCP tools (mcp__<server>__<tool>, see data/mcp.json) are external_effect, and ask, until a
# rule gives them a risk class; a rule naming one tool wins over a server-wide pattern. Even a
# read one asks in a turn that holds outside content (its arguments leave Steward), unless its
# rule says `closed_world = true` (they stay with the server: a database, a notes store). E.g.:
# [[rules]]
# tool = "mcp__time__*"
# risk = "read"

# Per-user rules come first for that user, e.g.:
# [[users."telegram:123456789".rules]]
# tool = "web_fetch"
# decision = "ask"
"""


def load_policy(path: Path) -> PolicyFile:
    """Read the policy file, writing the commented defaults first if there is none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEFAULT_POLICY, encoding="utf-8")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # a Latin-1 "café", a file saved as UTF-16
        raise PolicyError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    return _parsed(text, path)


def _parsed(text: str, path: Path) -> PolicyFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    try:
        return PolicyFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise PolicyError(f"{path}: {where}: {error['msg']}") from None


def _replace_file(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a full disk or a crash mid-write must not
    leave a truncated policy file (an empty one loads as the defaults: every rule of the
    owner's gone). R230: the temporary file's name is its own (two writers in one process
    had shared `.policy.toml.<pid>.tmp`), and it keeps the file's mode."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class OwnerChats(Protocol):
    async def is_owner_chat(self, channel: str, chat_id: str) -> bool: ...

    async def is_own_chat(self, user_id: int, channel: str, chat_id: str) -> bool: ...


class Policy(Protocol):
    async def decide(self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> Verdict: ...


_IN_FORCE: ContextVar[Policy | None] = ContextVar("steward_policy_in_force", default=None)


def policy_in_force() -> Policy | None:
    """The policy that decided the call now running (set by `PolicyEngine.decide`, which the
    turn and an approval ask just before they run it): R230, a tool that reaches further
    addresses of its own accord (a redirect) has each decided as the first one was."""
    return _IN_FORCE.get()


class PolicyEngine:
    def __init__(
        self,
        policy: PolicyFile,
        owner_chats: OwnerChats,
        path: Path | None = None,
        *,
        confined: Callable[[], bool] | None = None,
    ) -> None:
        """`confined`: whether shell commands run confined now (blocking; raises when the
        shell is off), so "allow always" binds a shell rule to it."""
        self.policy = policy
        self.path = path
        self._owner_chats = owner_chats
        self._confined = confined
        # R230: "always" decisions run in worker threads; two at once each read the file,
        # appended their rule and replaced it, and one rule was lost though it was reported
        self._writing = threading.Lock()

    def _confined_now(self) -> bool:
        """Blocking (the first call probes the machine): from a worker thread."""
        if self._confined is None:
            return False
        try:
            return self._confined()
        except Exception:  # the shell is off: nothing runs confined
            return False

    def add_rule_for(
        self,
        tool: str,
        arguments: dict[str, Any],
        person: str | None = None,
        identity: str | None = None,
    ) -> str:
        """Allow exactly this call from now on ("allow always"): a narrow rule appended to the
        policy file; `person` (an identity such as telegram:123): in that person's own section,
        for another person's request; `identity`: an MCP tool's, as approved (see `Rule`).
        Returns the rule as written."""
        if tool == "shell" and "command" in arguments:
            argv = shell_argv(str(arguments["command"]))
            rule = Rule(
                tool=tool,
                argv=shlex.join(argv),  # quoted tokens are literal: `*` stays an argument
                network=True if arguments.get("network") else None,
                confined=True if self._confined_now() else None,
                exact=True,  # written by "always": it wins over the ask rule it answered
                decision=Decision.ALLOW,
            )
        else:
            rule = Rule(
                tool=glob.escape(tool),
                args={k: glob.escape(exact_value(v)) for k, v in sorted(arguments.items())},
                exact=True,
                identity=identity,
                decision=Decision.ALLOW,
            )
        header = "[[rules]]" if person is None else f"[[users.{_toml_string(person)}.rules]]"
        lines = ["", '# Added by "allow always" (in chat or the web console).', header]
        lines.append(f"tool = {_toml_string(rule.tool)}")
        if rule.argv is not None:
            lines.append(f"argv = {_toml_string(rule.argv)}")
        if rule.args:
            inline = ", ".join(
                f"{_toml_string(k)} = {_toml_string(v)}" for k, v in rule.args.items()
            )
            lines.append(f"args = {{ {inline} }}")
        if rule.network is not None:
            lines.append(f"network = {str(rule.network).lower()}")
        if rule.confined is not None:
            lines.append(f"confined = {str(rule.confined).lower()}")
        if rule.exact:
            lines.append("exact = true")
        if rule.identity is not None:
            lines.append(f"identity = {_toml_string(rule.identity)}")
        lines.append('decision = "allow"')
        with self._writing:  # read, append and replace as one step
            if self.path is not None:
                text = self.path.read_text(encoding="utf-8") + "\n".join(lines) + "\n"
                policy = _parsed(text, self.path)  # checked before the file is touched
                _replace_file(self.path, text)
                self.policy = policy
            elif person is None:
                self.policy.rules.append(rule)
            else:
                self.policy.users.setdefault(person, UserPolicy()).rules.append(rule)
        return rule.describe() + ("" if person is None else f" (for {person})")

    async def decide(self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> Verdict:
        """The verdict on a call; for one that reaches its target by another name (a path
        through a link: `Tool.aliases`), the strictest of the verdicts on each name, every one
        decided in full by the first rule that matches it (R154: a link into a denied folder
        was read; R158: a guest's rule allowing `shared/notes.md` read the diary it was made a
        link to)."""
        _IN_FORCE.set(self)  # for the call it lets run (`policy_in_force`)
        verdict = await self._decide_one(tool, arguments, ctx)
        if verdict.decision is Decision.DENY or tool.aliases is None:
            return verdict
        for alias in await tool.aliases(ctx, arguments):
            other = await self._decide_one(tool, alias, ctx)
            if _STRICTNESS[other.decision] > _STRICTNESS[verdict.decision]:
                shown = ", ".join(f"{k}={v}" for k, v in alias.items() if arguments.get(k) != v)
                verdict = Verdict(other.decision, f"{other.reason} (it reaches {shown})")
        return verdict

    async def _decide_one(self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> Verdict:
        if tool.risk is Risk.FORBIDDEN:
            return Verdict(Decision.DENY, f"{tool.name} is forbidden")
        rule, personal = await self._match(tool, arguments, ctx)
        if rule is not None:
            decision, reason = rule.decision, f"policy rule: {rule.describe()}"
        else:
            decision = self.policy.default_for(tool.risk)
            reason = f"default for {tool.risk.value} tools"
        if (
            decision is Decision.ALLOW
            and tool.owner_data
            and not ctx.user.is_owner
            and not personal
        ):
            # The workspace, the mailbox and the MCP servers are the owner's: another person's
            # request to read or use them waits for the owner, unless a rule in that person's
            # own section of the policy file allows it.
            return Verdict(
                Decision.ASK, f"{tool.name} works on the owner's own things; another person asked"
            )
        if (
            decision is Decision.ALLOW
            and ctx.tainted
            and tool.risk is not Risk.READ
            and not _own_listing_only(ctx, tool)
        ):
            return Verdict(
                Decision.ASK,
                "this turn holds content from outside, so nothing above read runs unasked",
            )
        if (
            decision is Decision.ALLOW
            and ctx.tainted
            and tool.reaches_out
            and not self.policy.closed_world(tool.name)
            and not _exact_always(rule)  # its arguments fixed in advance: nothing rides in them
            and _outside(ctx, tool)
        ):
            # a read-class MCP tool's arguments go to its server (a search, a fetch): outside
            # words could fill them with what this turn's context holds (review 62)
            return Verdict(
                Decision.ASK,
                "this turn holds content from outside, and this tool's arguments leave Steward",
            )
        if (
            decision is Decision.ALLOW
            and ctx.tainted
            and tool.owner_data
            and not await self._replies_to_them_alone(ctx)
        ):
            # Outside words may ask to read the owner's files or mail; the reply would carry
            # them to whoever else reads this chat (a group, a channel a briefing posts to).
            return Verdict(
                Decision.ASK,
                "this turn holds content from outside and its reply is not for the owner alone",
            )
        return Verdict(decision, reason)

    async def _replies_to_them_alone(self, ctx: ToolContext) -> bool:
        """Whether the turn's reply goes only to its user's own private chat: the owner's, or,
        for another person a rule of their own section allowed, theirs (never a group)."""
        if ctx.address is None or (ctx.chat is not None and ctx.chat.kind != "private"):
            return False
        channel, chat = ctx.address.channel, ctx.address.chat_id
        if ctx.user.is_owner:
            return await self._owner_chats.is_owner_chat(channel, chat)
        return await self._owner_chats.is_own_chat(ctx.user.id, channel, chat)

    async def mcp_offered(self, ctx: ToolContext) -> Callable[[str], bool] | None:
        """Which MCP tools this person's turns are offered: all (None) to the owner; to
        another person only those a rule of their own section names, so no guest's model reads
        out the names of the owner's servers and tools ("bank-acme", "therapist", R117, R119)."""
        if ctx.user.is_owner:
            return None
        globs = [
            rule.tool
            for identity in await ctx.stores.people.identities_of(ctx.user.id)
            for rule in self.policy.users.get(str(identity), UserPolicy()).rules
            if rule.decision in (Decision.ALLOW, Decision.ASK)
        ]
        return lambda name: any(fnmatch.fnmatchcase(name, glob) for glob in globs)

    async def _match(
        self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext
    ) -> tuple[Rule | None, bool]:
        """The first rule that decides this call, and whether it is from the user's own section
        of the policy file. An "always" rule (`exact`) that matches wins over a first rule that
        asks: it is written at the end of its section, after the rule whose card it answered
        (R160: every "always" given on such a card was written again, and never applied)."""
        personal: list[Rule] = []
        for identity in await ctx.stores.people.identities_of(ctx.user.id):
            personal += self.policy.users.get(str(identity), UserPolicy()).rules
        sections = ((personal, True), (self.policy.rules, False))
        for rules, own in sections:
            for rule in rules:
                if rule.decision is not None and await self._matches(rule, tool, arguments, ctx):
                    if rule.decision is Decision.ASK:
                        return await self._always_over(rule, own, sections, tool, arguments, ctx)
                    return rule, own
        return None, False

    async def _always_over(
        self,
        asked: Rule,
        own: bool,
        sections: tuple[tuple[list[Rule], bool], ...],
        tool: Tool,
        arguments: dict[str, Any],
        ctx: ToolContext,
    ) -> tuple[Rule, bool]:
        """An "always" rule for exactly this call, if there is one and no rule that denies it
        comes first (R163: one written below an ask rule jumped a deny added between), else
        the rule that asks (a deny after it never decides: the first match does, R164)."""
        for rules, mine in sections:
            for rule in rules:
                always = rule.decision is Decision.ALLOW and _one_call(rule)
                if (always or rule.decision is Decision.DENY) and await self._matches(
                    rule, tool, arguments, ctx
                ):
                    return (rule, mine) if always else (asked, own)
        return asked, own

    async def _to_owner(
        self, arguments: dict[str, Any], ctx: ToolContext, tool: str = ""
    ) -> bool | None:
        """Whether a message goes to one of the owner's own private chats. With no chat named it
        goes to the requesting user's own chat, which is the owner's only if they are the owner.
        An e-mail goes to the owner when every recipient is the owner's own address."""
        if tool == "mail_send":
            own = ctx.deps.mail.account.own_addresses if ctx.deps.mail is not None else frozenset()
            try:  # field by field, exactly as mail_send reads them (a comment cannot span two)
                found = [a.lower() for k in ("to", "cc", "bcc") for a in _addresses(arguments, k)]
            except ValueError:
                return False
            return bool(found) and all(a in own for a in found)
        if tool != "send_message":  # a reply, an MCP tool: not a message to a chat or address
            return None  # a to_owner rule (true or false) never matches it
        chat = arguments.get("chat") or arguments.get("chat_id")
        if not chat:
            return ctx.user.is_owner
        channel = str(arguments.get("channel", "")).strip().lower()
        return await self._owner_chats.is_owner_chat(channel, str(chat).strip())

    async def _matches(
        self, rule: Rule, tool: Tool, arguments: dict[str, Any], ctx: ToolContext
    ) -> bool:
        if not fnmatch.fnmatchcase(tool.name, rule.tool):
            return False
        if rule.argv is not None and not argv_matches(rule.argv, str(arguments.get("command", ""))):
            return False
        shown = exact_value if rule.exact else str  # "always" rules: typed, not str()
        for name, pattern in rule.args.items():
            if name not in arguments:
                return False
            value = shown(arguments[name])
            if not any(fnmatch.fnmatchcase(value, p) for p in _pattern_forms(name, pattern)):
                return False
        # an argv rule covers the command (and its network flag, checked below) (R166)
        covered = set(rule.args) | ({"command", "network"} if rule.argv is not None else set())
        if rule.exact and not set(arguments) <= covered:
            return False
        if rule.identity is not None and (
            tool.fingerprint is None or await tool.fingerprint(ctx, arguments) != rule.identity
        ):
            return False  # the tool changed since the rule was written: another tool
        network = bool(arguments.get("network"))
        if rule.network is not None and rule.network != network:
            return False
        if network and rule.network is None and rule.decision is Decision.ALLOW:
            return False  # network access is allowed only by a rule that says so
        if rule.confined and not await asyncio.to_thread(self._confined_now):
            return False  # approved confined: not the same action unconfined
        to_owner = rule.to_owner
        if to_owner is None:
            return True
        found = await self._to_owner(arguments, ctx, tool.name)
        return found is not None and found == to_owner


@functools.lru_cache(maxsize=256)
def _pattern_forms(name: str, pattern: str) -> tuple[str, ...]:
    """A rule's pattern as written, and for a path or an address also as the tools' arguments
    are spelled (agent/tools/canonical.py): `./notes/*` or `https://bücher.example/*` written
    by hand, or an "always" rule written before, still match (R157)."""
    if name == "path":
        return tuple({pattern, canonical_path(pattern)})
    if name == "url":
        return tuple({pattern, canonical_url(pattern)})
    return (pattern,)


def _toml_string(value: str) -> str:
    """`value` as a TOML basic string. JSON's escapes are TOML's, but `ensure_ascii` would
    write a character beyond the BMP (an emoji) as a surrogate pair, which TOML refuses; DEL
    must be escaped in TOML. A lone surrogate has no TOML form: PolicyError."""
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise PolicyError("an argument holds a broken character (a lone surrogate)")
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _addresses(arguments: dict[str, Any], key: str) -> list[str]:
    """One recipient field's addresses, as agent/mail/message.parse_recipients reads it."""
    value = str(arguments.get(key) or "")
    if "\r" in value or "\n" in value:
        raise ValueError("line break in an address list")
    return [address for _, address in getaddresses([value]) if address]


_GLOB = frozenset("*?[")
WILDCARD = None  # a pattern token that stands for one whole argument


def _pattern_tokens(pattern: str) -> list[tuple[str, bool]]:
    """Split like `shell_argv`, noting for each token whether a glob character in it was left
    unquoted (quoted text is always literal)."""
    tokens: list[tuple[str, bool]] = []
    text, glob_char, started, quote, index = "", False, False, "", 0
    while index < len(pattern):
        char = pattern[index]
        if quote == "'":
            quote, text = ("", text) if char == "'" else (quote, text + char)
        elif quote == '"':
            if char == "\\" and pattern[index + 1 : index + 2] in ('"', "\\"):
                index += 1
                text += pattern[index]
            elif char == '"':
                quote = ""
            else:
                text += char
        elif char in "'\"":
            quote, started = char, True
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            text, started = text + pattern[index], True
        elif char.isspace():
            if started:
                tokens.append((text, glob_char))
            text, glob_char, started = "", False, False
        else:
            text, started = text + char, True
            glob_char = glob_char or char in _GLOB
        index += 1
    if quote:
        raise ValueError(f"argv pattern {pattern!r} has an unclosed quote")
    if started:
        tokens.append((text, glob_char))
    return tokens


@functools.lru_cache(maxsize=512)
def argv_pattern(pattern: str) -> tuple[str | None, ...]:
    """A pattern's tokens: exact strings, or WILDCARD for a bare `*`. ValueError names a token
    with a glob character inside it, which would look like a prefix match and is not one."""
    try:
        plain = shell_argv(pattern)
    except ValueError as exc:
        raise ValueError(f"argv pattern {pattern!r} cannot be parsed: {exc}") from None
    if not plain or any(t in SHELL_OPERATORS for t in plain):
        raise ValueError(f"argv pattern {pattern!r} must be one plain command")
    tokens = _pattern_tokens(pattern)
    if [text for text, _ in tokens] != plain:
        raise ValueError(f"argv pattern {pattern!r} must be one plain command")
    wanted: list[str | None] = []
    for position, (text, globbed) in enumerate(tokens):
        last = position == len(tokens) - 1
        if globbed and text == "*":
            wanted.append(WILDCARD)
        elif globbed and last and text.endswith("*") and not (set(text[:-1]) & _GLOB):
            wanted += [text[:-1], WILDCARD]  # older files: `git status*` means `git status *`
        elif globbed:
            raise ValueError(
                f"argv pattern {pattern!r}: {text!r} has a glob character inside it; "
                "argv matches whole arguments, `*` only on its own (e.g. 'git status *')"
            )
        else:
            wanted.append(text)
    return tuple(wanted)


def argv_matches(pattern: str, command: str) -> bool:
    """Whether a command's parsed argv matches the pattern exactly, token by token."""
    try:
        argv = shell_argv(command)
        wanted = argv_pattern(pattern)
    except ValueError:
        return False
    if not argv or any(token in SHELL_OPERATORS for token in argv):
        return False
    open_ended = wanted[-1] is WILDCARD
    fixed = wanted[:-1] if open_ended else wanted
    if len(argv) < len(fixed) or (len(argv) > len(fixed) and not open_ended):
        return False
    return all(w is WILDCARD or a == w for a, w in zip(argv, fixed, strict=False))


def _own_listing_only(ctx: ToolContext, tool: Tool) -> bool:
    """Whether all the turn holds from outside is this MCP tool's own server's descriptions of
    its tools (offered, or found by a search): they could steer its call only toward what that
    server could do with the call anyway, so an owner's rule allowing the tool applies (R134:
    an "always" rule never did, as the search that finds a tool taints the turn). Not its
    answers: a server relays others' words (a mail, a web page, an issue comment), which could
    choose when an "always"-approved write runs again (R162)."""
    server = getattr(tool, "server", "")
    own = (f"{TOOL_LISTING}{server}", f"{TOOL_SEARCH}{server}")
    return bool(server) and bool(ctx.sources) and all(s in own for s in ctx.sources)


def _one_call(rule: Rule) -> bool:
    """A rule for one call alone, as "always" writes it: `exact`, its tool and every argument
    glob-free (or escaped, as "always" writes them), and a shell pattern with no wildcard token
    (R165: `argv = "git *"` marked exact by hand jumped an ask rule; R166: so did
    `args = { path = "*" }` and `tool = "mcp__*"`)."""
    if not rule.exact or not all(map(_glob_free, [rule.tool, *rule.args.values()])):
        return False
    if rule.argv is None:
        return True
    try:
        return WILDCARD not in argv_pattern(rule.argv)
    except ValueError:
        return False


def _glob_free(pattern: str) -> bool:
    """Whether a glob pattern matches one text alone: no `*`, `?` or `[` but escaped ones."""
    return not re.search(r"[*?\[]", re.sub(r"\[[*?\[]\]", "", pattern))


def _exact_always(rule: Rule | None) -> bool:
    """An "always" rule of an MCP tool: its exact arguments, bound to the tool's identity."""
    return rule is not None and rule.exact and rule.identity is not None


def _outside(ctx: ToolContext, tool: Tool) -> bool:
    """Whether the turn holds outside content beyond MCP tools' descriptions offered with the
    tools (what any MCP client hands its model) and a search result listing this tool's own
    server alone. Another server's search listing counts: the model's query chose it, and it
    could steer this tool's arguments (review 65); so does a turn tainted by no source."""
    own = f"{TOOL_SEARCH}{getattr(tool, 'server', '')}"
    return not ctx.sources or any(not s.startswith(TOOL_LISTING) and s != own for s in ctx.sources)
