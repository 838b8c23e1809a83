"""In-chat approval of exact actions.

(Over 400 lines: asking, deciding, running and resuming share the checks below, in this
order, and the per-person locks; split apart, each half would have to state them again.)

A tool call the policy answers with `ask` becomes a deferred call in SQLite (memory/approvals.py),
bound to a hash of the tool, its arguments and the state it depends on. Deciding checks, in
order: the id is ours, the decider may approve, the approval is still pending and unexpired, the
policy as it is now does not deny it (R222), and the action's hash still matches; then it moves
to `executing` (committed) before the tool runs, so nothing runs twice. Nothing here waits in
memory: the turn resumes from stored history.
"""

from __future__ import annotations

import collections
import contextvars
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from agent.cards import describe_sources, escape_invisible, plain_name, shown_size
from agent.errors import ToolError
from agent.fence import fence, new_fence_id
from agent.model import ToolCall
from agent.policy import Decision, Policy, Verdict
from agent.tools.registry import Missing, Risk, Tool, ToolContext, ToolRegistry, ToolResult
from agent.well_formed import well_formed
from memory.approvals import Approval, ApprovalStatus, NewApproval
from memory.clock import CLOCK_SLACK
from memory.people import Identity, User
from memory.stores import Stores
from memory.turns import TurnStatus

__all__ = [
    "ACTION_FORMAT",
    "ACTION_FORMAT_KEY",
    "CLOCK_SLACK",
    "DECIDING",
    "MAY_HAVE_BEEN_DONE",
    "OWNERS_THINGS_REFUSED",
    "ApprovalService",
    "Decided",
    "Outcome",
    "action_hash",
    "approval_preview",
    "arguments_preview",
    "fenced_result",
    "new_approval_id",
    "person_named",
    "refusal_told",
]

log = logging.getLogger(__name__)


ACTION_FORMAT = "2026-12-07"
"""How what a request is bound to is worked out: its action's hash and the state the action
depends on (`agent/tree_digest.py`, a tool's `depends_on`, such as the shell's tree). Change it
whenever either is worked out differently: a request asked under another way is withdrawn at
the next start, saying Steward was upgraded (R207: approved after an upgrade, two untouched
requests were refused as "its arguments or the files it depends on changed")."""
ACTION_FORMAT_KEY = "approvals.action_format"
"""State key: the ACTION_FORMAT the pending requests were asked under (none: before R207)."""

_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

MAY_HAVE_BEEN_DONE = "(this may have been done: its answer was lost)"
"""Heads a result whose action may have run all the same (`ToolResult.uncertain`), as stored in
the transcript: `agent/turn.py` finds it there, after a resume too (R203)."""
_OWN_WORDS = 400
"""The most of an uncertain result's words the decision note quotes."""

DECIDING: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "approval_deciding", default=None
)
"""Set by a channel that answers a press to the presser alone (Telegram in a group, R201):
called once the press decides an approval, before the approved call runs, so what the call
sends to that chat goes to the chat (R203: an approved post to the group became the presser's
pop-up)."""

OWNERS_THINGS_REFUSED = (
    "refused without asking: this works on the owner's own things and cannot be put to them "
    "as asked; nothing ran"
)


def refusal_told(ctx: ToolContext, tool: Tool, reason: str) -> str:
    """What a turn is told of a check that refused its call before any card. Another person's
    turn, of a tool on the owner's things, learns only that it was refused: the reason may
    name what the owner's workspace holds (R181: a folder's name, a link leading out, a file's
    hard links, each told to a guest's model while a plain request made a card)."""
    if tool.owner_data and not ctx.user.is_owner:
        return OWNERS_THINGS_REFUSED
    return reason


def person_named(user: User) -> str:
    """Another person as Steward names them to the owner: by the number Steward gave them, the
    name they chose after it, quoted (R262: a guest who named themselves "owner" was "asked by
    owner", as the owner is)."""
    chosen = plain_name(user.display_name, 48)
    return f"person #{user.id}" + (f" (“{chosen}”)" if chosen else "")


def new_approval_id() -> str:
    """Four characters a person can type on a phone (`/approve k3f9`), no look-alikes."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(4))


def action_hash(tool: str, arguments: dict[str, Any], fingerprint: str) -> str:
    canonical = json.dumps([tool, arguments, fingerprint], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Outcome(StrEnum):
    EXECUTED = "executed"
    DENIED = "denied"
    REFUSED = "refused"
    UNKNOWN = "unknown"
    ALREADY = "already"
    EXPIRED = "expired"
    CHANGED = "changed"
    WITHDRAWN = "withdrawn"
    UNAVAILABLE = "unavailable"
    """Its tool is not there right now (its MCP server is restarting): still pending."""


@dataclass(frozen=True)
class Decided:
    outcome: Outcome
    message: str
    approval: Approval | None = None
    in_the_open: str | None = None
    """`message` as a chat others read may see it, without the call's own words (None: the
    same)."""


def _still_the_action(tool: Tool, approval: Approval, current: str) -> bool:
    """The approved action is the one that would run now: the same hash, or a fingerprint the
    tool says it can still honour (the stored one checked against the hash first)."""
    if action_hash(approval.tool, approval.arguments, current) == approval.action_hash:
        return True
    return (
        tool.still_matches is not None
        and action_hash(approval.tool, approval.arguments, approval.fingerprint)
        == approval.action_hash
        and tool.still_matches(approval.fingerprint, current)
    )


class ApprovalService:
    def __init__(
        self,
        stores: Stores,
        tools: ToolRegistry,
        *,
        expiry: timedelta,
        approvers: frozenset[Identity],
        per_minute: int,
        policy: Policy | None = None,
    ) -> None:
        """`policy`: asked again when a request is approved (R222); None in a bare build."""
        self._stores = stores
        self._policy = policy
        self._tools = tools
        self._expiry = expiry
        self._approvers = approvers
        self._refused_tries: collections.Counter[str] = collections.Counter()
        self._per_minute = per_minute

    async def request(
        self,
        ctx: ToolContext,
        tool: Tool,
        call: ToolCall,
        arguments: dict[str, Any],
        verdict: Verdict,
        taint_sources: list[str],
    ) -> Approval | ToolResult:
        """Store a deferred call; a ToolResult instead when it is refused without asking."""
        clock = ctx.clock
        if not await self._stores.people.may_talk(ctx.user.id):  # revoked while the turn ran
            return ToolResult(
                "refused without asking: the person who asked can no longer talk to me",
                is_error=True,
                refused=True,
            )
        try:
            fingerprint = await tool.fingerprint(ctx, arguments) if tool.fingerprint else ""
        except ToolError as exc:  # what the action depends on cannot be pinned: never ask
            await self._stores.audit.record(
                "tool.refused", actor=f"turn:{ctx.turn_id}", subject=tool.name, reason=str(exc)
            )
            return ToolResult(refusal_told(ctx, tool, str(exc)), is_error=True, refused=True)
        except Exception:  # a fault of ours: the turn goes on, told (R105: it died)
            log.exception("fingerprint of %s failed", tool.name)
            reason = "refused without asking: I could not check what this action depends on"
            return ToolResult(reason, is_error=True, refused=True)
        digest = action_hash(tool.name, arguments, fingerprint)
        audit = self._stores.audit
        duplicate = await self._stores.approvals.pending_with_hash(ctx.user.id, digest)
        if duplicate is not None:
            await audit.record(
                "approval.collapsed", actor=f"turn:{ctx.turn_id}", subject=duplicate.id
            )
            # No id here: approval ids stay between the owner and Steward, so text the model
            # reads can never coach the owner towards one.
            return ToolResult(
                "an identical request is already waiting for the owner; it was not asked again",
                is_error=True,
            )
        now = clock.now()
        # R224: bounded above too: after the clock is set back, the requests stamped "later"
        # are not this minute's (every request was refused as "more than 5 a minute")
        recent = await self._stores.approvals.requested_since(
            ctx.user.id, now - timedelta(minutes=1), until=now + CLOCK_SLACK
        )
        if recent >= self._per_minute:
            await audit.record(
                "approval.rate_limited", actor=f"turn:{ctx.turn_id}", subject=tool.name
            )
            return ToolResult(
                f"refused without asking: more than {self._per_minute} approval requests in a "
                "minute. Stop and tell the user what you were trying to do.",
                is_error=True,
                refused=True,
            )
        preview = await _preview(tool, ctx, arguments)
        reason = verdict.reason
        if not ctx.user.is_owner:  # the card may sit in the owner's own thread (review 83)
            reason = f"asked in the conversation of {person_named(ctx.user)}, not yours — {reason}"
        if taint_sources:  # kinds and hosts only: a URL's words are the attacker's
            reason += " — this turn read: " + describe_sources(taint_sources)
        approval_id = new_approval_id()
        while await self._stores.approvals.exists(approval_id):
            approval_id = new_approval_id()
        address = ctx.address
        approval = await self._stores.approvals.add(
            NewApproval(
                id=approval_id,
                turn_id=ctx.turn_id,
                user_id=ctx.user.id,
                chat_id=ctx.chat.id if ctx.chat else None,
                tool=tool.name,
                tool_use_id=call.id,
                arguments=arguments,
                action_hash=digest,
                fingerprint=fingerprint,
                risk=tool.risk.value,
                reason=reason,
                preview=preview,
                tainted=ctx.tainted,
                channel=address.channel if address else None,
                platform_chat_id=address.chat_id if address else None,
                thread_id=address.thread_id if address else None,
                expires_at=clock.now() + self._expiry,
            )
        )
        await audit.record(
            "approval.requested",
            actor=f"turn:{ctx.turn_id}",
            subject=approval.id,
            tool=tool.name,
            action_hash=digest,
            tainted=ctx.tainted,
            **tool.audit_detail,
        )
        return approval

    async def preview_for(self, approval: Approval, viewer: User, *, private: bool) -> str:
        """The preview as `viewer` may read it in `chat`. A preview holds what was looked up
        to show the action: a file's current lines, a mail's sender and subject, the words of
        a memory, goal or reminder it would change. It is whole only where those are the
        reader's own: the owner in a private chat, or the person who asked, in their own
        private chat, for what is theirs (not the owner's workspace or mail). In a group, or
        for another person, the action by its arguments alone (review 86: a guest read the
        owner's file and mail headers off the card of a request they made; a group read the
        owner's memories off a card a member's words caused). `private`: read by `viewer` alone
        (their private chat, their console)."""
        tool = self._tools.get(approval.tool)
        owners = tool is None or tool.owner_data
        if private and (viewer.is_owner or (viewer.id == approval.user_id and not owners)):
            return approval_preview(approval)
        return arguments_preview(approval)

    async def refused(self, kind: str, identity: Identity, subject: str) -> None:
        """Audit a refusal of someone who may not decide or see requests at their 1st, 2nd,
        4th, 8th … one, with the count, as a stranger's knocks are: a flood of `/deny` or
        `/approve show` lines cannot fill the audit log (R97, R98)."""
        key = f"{kind} {identity}"  # each kind counted apart: a list refused first never
        tries = self._refused_tries[key] = self._refused_tries[key] + 1  # hides a /deny
        if tries & (tries - 1) == 0:
            await self._stores.audit.record(kind, actor=str(identity), subject=subject, tries=tries)

    def may_decide(self, identity: Identity, user: User | None) -> bool:
        return (user is not None and user.is_owner) or identity in self._approvers

    async def decide(
        self,
        approval_id: str,
        *,
        identity: Identity,
        user: User | None,
        approve: bool,
        ctx_for: Any,
    ) -> Decided:
        """Apply a decision from `identity`. `ctx_for(approval)` builds the ToolContext the
        approved call runs with (the requesting turn's user and chat, `approved=True`)."""
        store = self._stores.approvals
        audit = self._stores.audit
        if not self.may_decide(identity, user):
            # asked before the id is looked up: one answer for every id, so someone who may
            # not decide learns nothing of which requests exist. Audited on the 1st, 2nd,
            # 4th, 8th … try, with the count, as a stranger's knocks are: a guest's flood of
            # /deny lines cannot bury the owner's events (R97)
            await self.refused("approval.refused_decider", identity, approval_id[:16])
            return Decided(Outcome.REFUSED, "Only the owner can decide approval requests.")
        approval = await store.get(approval_id.strip().lower())
        if approval is None:
            await audit.record("approval.unknown", actor=str(identity), subject=approval_id[:16])
            shown = escape_invisible(approval_id[:16]) + ("…" if len(approval_id) > 16 else "")
            # R231: quoted whole, 30,000 characters typed came back
            return Decided(Outcome.UNKNOWN, f"There is no approval request {shown!r}.")
        tool = self._tools.get(approval.tool)  # looked up once: the same tool is judged and run
        if approve and tool is not None and tool.owner_data and not (user and user.is_owner):
            # The workspace, the mailbox and the MCP servers are the owner's: an approver may
            # refuse their use, never grant it (not even for their own request).
            await audit.record("approval.refused_decider", actor=str(identity), subject=approval.id)
            return Decided(
                Outcome.REFUSED,
                f"Only the owner can approve {approval.tool}: it works on the owner's own things.",
            )
        if approval.status is not ApprovalStatus.PENDING:
            return Decided(
                Outcome.ALREADY, f"{approval.id} was already {approval.status.value}.", approval
            )
        if not await self._stores.people.may_talk(approval.user_id):
            # revoked since they asked: nothing of theirs runs, and their turn is not resumed
            for gone in await store.withdraw_for_user(approval.user_id, decided_by=str(identity)):
                label = await self._stores.turns.label_of(gone.turn_id)  # ends, never resumed
                await self._stores.turns.end_paused(gone.turn_id, TurnStatus.SKIPPED, label=label)
            await audit.record("approval.withdrawn", actor=str(identity), subject=approval.id)
            return Decided(
                Outcome.WITHDRAWN,
                f"{approval.id} was withdrawn: the person who asked can no longer talk to me. "
                "Nothing ran.",
                approval,
            )
        ctx: ToolContext = await ctx_for(approval)
        now = ctx.clock.now()
        if now >= approval.expires_at or now < approval.requested_at - CLOCK_SLACK:
            # a clock set back since the request (R123: hours later it was still "valid");
            # a second's correction is not that
            if not await self.expire(approval):  # decided meanwhile: that decision stands
                return Decided(Outcome.ALREADY, f"{approval.id} was already decided.", approval)
            return Decided(Outcome.EXPIRED, f"{approval.id} had expired; nothing ran.", approval)
        decider = str(identity)
        if not approve:
            if not await self._deny(
                approval, decider, f"the owner denied this {approval.tool} call"
            ):
                return Decided(Outcome.ALREADY, f"{approval.id} was already decided.", approval)
            await audit.record(
                "approval.denied", actor=decider, subject=approval.id, tool=approval.tool
            )
            return Decided(Outcome.DENIED, f"Denied {approval.id}: {approval.tool}.", approval)
        missing = self._tools.missing(approval.tool) if tool is None else None
        if missing is not None and missing is not Missing.DOWN:
            # its server is up without it, or no longer set up: it cannot come back by
            # waiting (R134: "approve it again once the server is back", of a server up)
            why = (
                "its MCP server no longer has that tool"
                if missing is Missing.GONE
                else "no MCP server of that name is set up any more"
            )
            if not await self._deny(
                approval, decider, f"{approval.tool} cannot run: {why}; nothing ran"
            ):
                return Decided(Outcome.ALREADY, f"{approval.id} was already decided.", approval)
            await audit.record(
                "approval.unavailable", actor=decider, subject=approval.id, tool=approval.tool
            )
            return Decided(
                Outcome.DENIED,
                f"{approval.id} cannot run: {why} ({approval.tool}). Nothing ran.",
                approval,
            )
        if tool is None and approval.tool.startswith("mcp__"):
            # its server is down or restarting (R99: denied for good as "changed" though
            # nothing changed): the request waits, and may be approved once it is back
            await audit.record(
                "approval.unavailable",
                actor=str(identity),
                subject=approval.id,
                tool=approval.tool,
            )
            return Decided(
                Outcome.UNAVAILABLE,
                f"{approval.id} cannot run right now: {approval.tool} is not available (its MCP "
                "server is not running; /mcp shows it). Nothing ran, and the request still "
                "waits: approve it again once the server is back.",
                approval,
            )
        forbids = await self._denied_now(tool, approval, ctx) if tool is not None else None
        if forbids is not None:
            if not await self._deny(
                approval, decider, f"the policy now forbids this {approval.tool} call; nothing ran"
            ):
                return Decided(Outcome.ALREADY, f"{approval.id} was already decided.", approval)
            await audit.record(
                "approval.policy_denied",
                actor=decider,
                subject=approval.id,
                tool=approval.tool,
                reason=forbids[:300],
            )
            return Decided(
                Outcome.DENIED,
                f"{approval.id} was not run: the policy now forbids {approval.tool} for this "
                "call, so it was denied. Nothing ran.",
                approval,
            )
        current = ""
        if tool is not None and tool.fingerprint is not None:
            try:
                current = await tool.fingerprint(ctx, approval.arguments)
            except ToolError:  # became unreadable since: it cannot be shown to be the same
                current = "unverifiable"
        if tool is None or not _still_the_action(tool, approval, current):
            changed = "the action changed after it was requested, so the approval no longer "
            if not await self._deny(
                approval, decider, changed + "matches it; nothing ran"
            ):  # a decision a moment earlier ran it (and changed the files): that one stands
                return Decided(Outcome.ALREADY, f"{approval.id} was already decided.", approval)
            await audit.record(
                "approval.mismatch", actor=decider, subject=approval.id, tool=approval.tool
            )
            what = (  # R134: a server's redefined tool was put down to changed arguments
                "the tool as its MCP server now defines it is not the one asked for"
                if approval.tool.startswith("mcp__")
                else "its arguments or the files it depends on changed"
            )
            return Decided(
                Outcome.CHANGED,
                f"{approval.id} no longer matches what was requested ({what}), so it was denied.",
                approval,
            )
        if not await store.transition(
            approval.id, ApprovalStatus.PENDING, ApprovalStatus.EXECUTING, decided_by=decider
        ):
            return Decided(Outcome.ALREADY, f"{approval.id} was already decided.", approval)
        if (deciding := DECIDING.get()) is not None:
            deciding()
        await audit.record(
            "approval.approved",
            actor=decider,
            subject=approval.id,
            tool=approval.tool,
            action_hash=approval.action_hash,
        )
        ran = replace(ctx, approved_fingerprint=approval.fingerprint)
        try:
            result = await tool.run(ran, approval.arguments)
        except Exception:  # never left "executing", its turn never resumed
            log.exception("approved %s failed", approval.tool)
            result = ToolResult(f"{approval.tool} failed unexpectedly", is_error=True)
        content = fenced_result(result)
        await store.transition(
            approval.id,
            ApprovalStatus.EXECUTING,
            ApprovalStatus.FAILED if result.is_error else ApprovalStatus.EXECUTED,
            result=content,
            result_is_error=result.is_error,
            result_source=result.source,
        )
        await audit.record(
            "tool.ran",
            actor=f"turn:{approval.turn_id}",
            subject=approval.tool,
            approval=approval.id,
            is_error=result.is_error,
            result_chars=len(result.content),
            **tool.audit_detail,
        )
        done = await store.get(approval.id)
        said = "failed" if result.is_error else "ran"  # R167: a send that failed said "ran"
        if result.partial and not result.is_error:  # a mail some recipients refused
            said = f"ran, but {result.partial}"
        shown = None
        if result.uncertain:  # R198: "failed" over a mail that may have gone out
            said = f"may have run: its answer was lost. It said: {_own_words(result)}"
            shown = f"Approved {approval.id}: {approval.tool} may have run: its answer was lost."
        return Decided(
            Outcome.EXECUTED, f"Approved {approval.id}: {approval.tool} {said}.", done, shown
        )

    async def _denied_now(self, tool: Tool, approval: Approval, ctx: ToolContext) -> str | None:
        """Why the policy as it is now denies the approved call (None: it does not). R222: a
        `deny` rule, or an MCP tool made forbidden, after the card (and a restart to load it)
        did not stop the old card's approval; the call ran. Asked for the requester, as their
        turn asked; a policy that cannot be asked (a link that now leads nowhere) denies."""
        if tool.risk is Risk.FORBIDDEN:
            return f"{tool.name} is forbidden"
        if self._policy is None:
            return None
        try:
            verdict = await self._policy.decide(tool, approval.arguments, ctx)
        except ToolError as exc:
            return str(exc)
        except Exception:  # a fault of ours: nothing runs unchecked
            log.exception("policy check of %s failed", approval.id)
            return "the policy could not be checked"
        return verdict.reason if verdict.decision is Decision.DENY else None

    async def _deny(self, approval: Approval, decider: str, result: str) -> bool:
        """Denied (by the owner, or as nothing that can run): False when already decided."""
        return await self._stores.approvals.transition(
            approval.id,
            ApprovalStatus.PENDING,
            ApprovalStatus.DENIED,
            decided_by=decider,
            result=result,
            result_is_error=True,
        )

    async def expire(self, approval: Approval) -> bool:
        changed = await self._stores.approvals.transition(
            approval.id,
            ApprovalStatus.PENDING,
            ApprovalStatus.EXPIRED,
            result="the owner did not approve this in time; it did not run",
            result_is_error=True,
        )
        if changed:
            await self._stores.audit.record(
                "approval.expired", actor="steward", subject=approval.id, tool=approval.tool
            )
        return changed


async def _preview(tool: Tool, ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The tool's own preview; one that fails (an id past SQLite's integers, a service down)
    leaves the card its arguments and says so, never the turn without a card (review 65)."""
    if tool.preview is None:
        return ""
    try:
        return await tool.preview(ctx, arguments)
    except Exception as exc:
        log.warning("%s: preview failed: %s", tool.name, exc)
        lines = "\n".join(f"{key}: {_one_line(v)}" for key, v in arguments.items())
        return f"{lines}\n(not looked up: {type(exc).__name__})"


RESUME_WITHIN = timedelta(days=1)
"""A turn decided (or expired) longer ago than this is not taken up again: a reply then, out of
the blue, would help nobody (it is closed as interrupted, so its memories can go)."""

SHOWN_BY_ARGUMENTS = (
    "(shown here by its arguments alone: what it would change is the owner's to see, in "
    "their private chat with /approve show)"
)


LONG_ARGUMENT = 200
"""An argument longer than this (as a card shows it) is text to read (a mail's body), not
what says where the action goes: shown after the short ones (`arguments_preview`)."""


LINE_BREAK = "⏎"
"""How a card shown by its arguments writes a line break in a value (R235)."""


def _one_line(text: object) -> str:
    """A value on one line, its line breaks shown as LINE_BREAK and nothing else folded.
    R235: folded into spaces, `echo tidy # rm -rf notes` (a comment) and `echo tidy #` then
    `rm -rf notes` on a line of its own made the same group card, and approving the first
    look wrote the second. R237: folding the other whitespace too (str.split) made U+2028 (a
    line end to JavaScript) a space before the card could escape it, dropped indentation (a
    wipe under `if False:` or at the top level read alike), and a ⏎ typed into the value read
    as the card's own mark; the rest of the card (`render_card`) escapes invisible characters
    and counts long runs of blanks."""
    value = str(text).replace(LINE_BREAK, "\\u23ce")
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    shown = f" {LINE_BREAK} ".join(lines)
    return shown[:-1] if len(lines) > 1 and not lines[-1] else shown  # "… ⏎", no space after


def arguments_preview(approval: Approval) -> str:
    """The action as the request itself put it, nothing looked up: what a card shows where the
    looked-up words are not the reader's own (review 86). The short arguments come first and
    whole, then the long ones, shortest first; the longest of those last, below a
    `--- body (N characters) ---` line, so that a cut card keeps everything above it whole and
    cuts that one only (`agent.cards.render_card`; R200: in a group, a mail's long body and
    subject had hidden its Cc in the card's cut middle, and the owner approved it there)."""
    lines = [(_one_line(key), _one_line(value)) for key, value in approval.arguments.items()]
    sizes = [shown_size(value) for _, value in lines]
    long = sorted(
        (i for i, size in enumerate(sizes) if size > LONG_ARGUMENT), key=sizes.__getitem__
    )
    short = [f"{key}: {value}" for i, (key, value) in enumerate(lines) if i not in long]
    if not long:
        return "\n".join([*short, SHOWN_BY_ARGUMENTS])
    *longer, longest = (f"{lines[i][0]}: {lines[i][1]}" for i in long)
    body_line = f"--- body ({len(longest):,} characters) ---"  # what the card layer cuts
    return "\n".join([*short, *longer, SHOWN_BY_ARGUMENTS, body_line, longest])


def approval_preview(approval: Approval) -> str:
    """What a person sees to judge the action: the tool's own preview, else its arguments."""
    if approval.preview:
        return approval.preview
    return "\n".join(f"{key}: {value}" for key, value in approval.arguments.items())


def fenced_result(result: ToolResult) -> str:
    """A tool result as the model sees it: outside content fenced, with a fresh id. One that
    may have been done (`uncertain`) is headed `MAY_HAVE_BEEN_DONE`: stored so, a turn that
    fails later still knows not to say "try again" (R203)."""
    content = well_formed(result.content)  # whatever a tool or an MCP server handed back
    if result.source is not None:
        content = fence(content, result.source, new_fence_id())
    return f"{MAY_HAVE_BEEN_DONE} {content}" if result.uncertain else content


def _own_words(result: ToolResult) -> str:
    """What an uncertain result says of itself (what to check before asking again: R203, the
    owner read "see below" over nothing), on one line, within `_OWN_WORDS` characters."""
    words = " ".join(escape_invisible(well_formed(result.content)).split()).rstrip(".")
    return words if len(words) <= _OWN_WORDS else words[: _OWN_WORDS - 1] + "…"
