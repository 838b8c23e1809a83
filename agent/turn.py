"""The agent turn: context → model → tools → … → a reply, within a step limit.

A turn is recorded in SQLite when it starts (status `running`) and when it ends, with its token
usage, cost and transcript, so a crash leaves it visible as interrupted. When the policy asks the
owner about a tool call, the turn stops at that step (`awaiting_approval`), its transcript and
the step's other results stored; `resume()` continues it from there once every approval of the
step is decided.

Trust: a turn's label is the join of everything in its context (the trigger, the history, recalled
memories and goals) and of every outside tool result it reads; it is stored with the turn, its
reply and whatever it makes, so a reply written after reading a page is still the page's
influence in the next turn. What the policy refused (or rate-limited) is told to the owner once
per turn, with the sources it was done on behalf of. A chat turn's answer may be streamed to
a live preview (agent/streaming.py) until the turn holds outside content; nothing is shown after.

(Over 400 lines: running, pausing and resuming are one state machine over the same stored
turn and its label; split, the taint rules would be in two places and how a label survives a
pause would be hidden.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.approvals import MAY_HAVE_BEEN_DONE, ApprovalService, fenced_result, refusal_told
from agent.context import ContextBuilder
from agent.keyed_lock import KeyedLock
from agent.model import BilledUnavailable, Model, ModelReply, ModelUnavailable, ToolCall
from agent.policy import Decision, Policy
from agent.pricing import estimate_cost
from agent.streaming import ReplyStream, ask_streamed
from agent.text_fences import close_open_fence
from agent.tools.registry import (
    Missing,
    Offered,
    Risk,
    ToolContext,
    ToolDeps,
    ToolError,
    ToolRegistry,
    ToolResult,
)
from agent.transcript import (
    Message,
    PausedState,
    ToolResultPart,
    ToolUsePart,
    api_form,
    dump_transcript,
    load_transcript,
    to_api,
    with_breakpoint,
)
from agent.types import SILENT_REPLY, Address, TurnOutcome, TurnRequest
from memory.approvals import Approval, ApprovalStatus
from memory.labels import TRUSTED, Label
from memory.people import User
from memory.turns import StoredTurn, TokenUsage, TurnStatus
from memory.visible import visible

__all__ = ["NO_API_KEY_REPLY", "TurnRunner"]

log = logging.getLogger(__name__)

GUEST_LIMIT_REPLY = (
    "We've talked a lot today, more than my owner set aside for conversations with other "
    "people; let's go on tomorrow."
)
GUEST_SPENT_MIDWAY = (
    "I stopped here: this used up what my owner set aside for today's conversations with "
    "other people. Let's go on tomorrow."
)
BUDGET_SPENT_MIDWAY = (
    "I stopped here: this used up today's token budget for work I start on my own "
    "(STEWARD_DAILY_TOKEN_BUDGET). Tell me to continue if you want me to go on; your "
    "messages are still answered."
)
MAX_DONE_NAMED = 10
"""A turn the model API gave up on names at most this many of the actions it had done."""
NO_API_KEY_REPLY = (
    "I can't think yet: no model API key is configured. Put ANTHROPIC_API_KEY=sk-ant-... "
    "in the .env file in Steward's home (STEWARD_HOME, else its checkout; see .env.example), "
    "then restart it. "
    "Commands such as /help and /status work without it."
)


@dataclass(frozen=True)
class _Paused:
    """A step that waits for the owner: its calls in order, the results of those that ran."""

    order: list[str]
    results: dict[str, ToolResultPart]
    approvals: tuple[Approval, ...]


@dataclass
class _Turn:
    """A turn in progress: what resume() needs is exactly what is stored when it pauses."""

    id: int
    request: TurnRequest
    ctx: ToolContext
    system: list[dict[str, Any]]
    messages: list[Message]
    usage: TokenUsage = field(default_factory=TokenUsage)
    recorded: int = 0
    """Of `usage`, the tokens already in the turn's row (a resumed turn's, stored at pause)."""
    steps: int = 0
    label: Label = TRUSTED
    refused: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    """What the model wrote before its tool calls this turn: part of the answer (R148: a
    summary written before one was streamed, then gone; only the last step's text came)."""
    stream: ReplyStream | None = None
    """The owner's live view of the answer, while the turn holds nothing from outside."""
    prompt: int = 0
    """How many messages are the prompt (history, context, trigger): a finished turn stores
    only what came after (the model's answers, tool results), not the history again each turn."""
    mcp_offered: Offered = None
    """Which MCP tools are offered (None: all, the owner's turn; see `Policy.mcp_offered`)."""
    head: list[dict[str, Any]] = field(default_factory=list)
    """A turn started here: its prompt as the API takes it (`api_form`), sent as is, with
    `messages` holding only what came after. The typed prompt is made only if the turn pauses
    (the history is long; typing and dumping it on every turn cost more than the rest of the
    turn's context). A resumed turn has none: `messages` is its whole transcript."""

    def transcript(self) -> list[Message]:
        """Everything the turn holds, the prompt first, typed."""
        return [*(Message.from_api(m) for m in self.head), *self.messages]

    def after_prompt(self) -> list[Message]:
        """What came after the prompt: what a finished turn stores."""
        return self.messages[self.prompt - len(self.head) :]

    def to_send(self) -> list[dict[str, Any]]:
        """The messages for the model, a cache breakpoint on the last one."""
        if not self.messages:
            return [*self.head[:-1], with_breakpoint(self.head[-1])]
        last = self.messages[-1].with_breakpoint()
        return [*self.head, *to_api([*self.messages[:-1], last])]

    def taint(self, label: Label) -> None:
        """Join `label` into the turn's; from then on nothing above read runs unasked."""
        self.label = self.label.join(label)
        if self.label.tainted:
            self.ctx = replace(self.ctx, tainted=True, sources=self.label.sources)
            self.request = replace(self.request, tainted=True, sources=self.label.sources)


class TurnRunner:
    def __init__(
        self,
        *,
        deps: ToolDeps,
        model: Model | None,
        tools: ToolRegistry,
        policy: Policy,
        context: ContextBuilder,
        max_steps: int,
        daily_token_budget: int,
        approvals: ApprovalService | None = None,
        guest_daily_tokens: int = 0,
    ) -> None:
        self._deps = deps
        self._stores = deps.stores
        self._clock = deps.clock
        self._model = model
        self._tools = tools
        self._policy = policy
        self._context = context
        self._max_steps = max_steps
        self._daily_token_budget = daily_token_budget
        self._guest_daily_tokens = guest_daily_tokens
        self._guest_turns = KeyedLock()  # one turn at a time for each person with an allowance
        self._approvals = approvals

    async def aclose(self) -> None:
        close = getattr(self._model, "close", None)
        if close is not None:
            await close()

    @property
    def model_name(self) -> str:
        return self._model.name if self._model else "(not configured)"

    def tool_context(
        self, request: TurnRequest, turn_id: int, *, approved: bool = False
    ) -> ToolContext:
        return ToolContext(
            deps=self._deps,
            user=request.user,
            chat=request.chat,
            address=request.address,
            turn_id=turn_id,
            tainted=request.tainted,
            approved=approved,
            sources=request.label.sources,
        )

    async def run(self, request: TurnRequest, *, stream: ReplyStream | None = None) -> TurnOutcome:
        async with self._one_at_a_time(request.user):
            return await self._run(request, stream)

    def _one_at_a_time(self, user: User) -> AbstractAsyncContextManager[None]:
        """A person with an allowance runs one turn at a time, across all their chats: it is
        checked against finished turns, so a guest writing in ten groups at once would pass ten
        checks before any turn was counted (R97); a resumed turn waits its turn too (R98)."""
        if self._guest_daily_tokens > 0 and not user.is_owner:
            return self._guest_turns.hold(user.id)
        return contextlib.nullcontext()

    async def _run(self, request: TurnRequest, stream: ReplyStream | None) -> TurnOutcome:
        if self._model is None:
            return TurnOutcome(NO_API_KEY_REPLY, TurnStatus.SKIPPED, None, TokenUsage(), 0)
        if request.self_initiated and await self.over_budget(request):
            return TurnOutcome("", TurnStatus.SKIPPED, None, TokenUsage(), 0, skipped_for="budget")
        if await self.guest_over_allowance(request):
            said = "" if request.self_initiated else GUEST_LIMIT_REPLY  # a check-in just waits
            return TurnOutcome(
                said, TurnStatus.SKIPPED, None, TokenUsage(), 0, skipped_for="allowance"
            )
        prompt = await self._context.build(request)
        label = request.label.join(prompt.label)
        request = replace(request, tainted=label.tainted, sources=label.sources)
        turn_id = await self._stores.turns.start(
            kind=request.kind,
            model=self._model.name,
            chat_id=request.chat.id if request.chat else None,
            user_id=request.user.id,
            message_id=request.message_id,
            label=label,
            run_id=request.run_id,
        )
        ctx = self.tool_context(request, turn_id)
        turn = _Turn(
            id=turn_id,
            request=request,
            ctx=ctx,
            mcp_offered=await self._policy.mcp_offered(ctx),
            system=prompt.system,
            messages=[],
            label=label,
            stream=stream,
            prompt=len(prompt.messages),
            head=[api_form(m) for m in prompt.messages],
        )
        return await self._loop(turn)

    async def resume(self, turn_id: int) -> TurnOutcome | None:
        """Continue a paused turn once every approval of its step is decided; None while some
        are still pending (or when the turn is not paused)."""
        stored = await self._stores.turns.stored(turn_id)
        if stored is None or stored.status != TurnStatus.AWAITING_APPROVAL or self._model is None:
            return None
        approvals = await self._stores.approvals.for_turn(turn_id)
        if any(not a.decided for a in approvals) or not stored.paused_state:
            return None
        state = PausedState.model_validate_json(stored.paused_state)
        messages = load_transcript(stored.transcript or "[]")
        request = await self._request_for(stored, state)
        if request is None:
            return None
        if not await self._stores.people.may_talk(request.user.id):
            # revoked while it waited: their turn ends here, no model call, nothing sent
            await self._stores.turns.end_paused(turn_id, TurnStatus.SKIPPED, label=stored.label)
            return None
        label = stored.label.join(Label(state.label))
        decided = {a.tool_use_id: a for a in approvals}
        results: list[ToolResultPart] = []
        for call_id in state.order:
            if call_id in state.results:
                results.append(state.results[call_id])
                label = label.join(state.results[call_id].trust)
                continue
            approval = decided[call_id]
            tool = self._tools.get(approval.tool)
            # a failed run (a command's exit code 1) still printed what it read
            ran = approval.status in (ApprovalStatus.EXECUTED, ApprovalStatus.FAILED)
            # a tool gone since (an MCP server renamed or dropped it) counts as outside, and
            # so does any result stored with a source
            outside = ran and (
                tool is None or tool.untrusted_output or approval.result_source is not None
            )
            part_label = (
                Label.untrusted(approval.result_source or f"{approval.tool} result")
                if outside
                else Label()
            )
            label = label.join(part_label)
            results.append(
                ToolResultPart(
                    tool_use_id=call_id,
                    content=approval.result or "",
                    is_error=approval.result_is_error,
                    label=part_label.sources,
                )
            )
        messages.append(Message(role="user", content=list(results)))
        request = replace(request, tainted=label.tainted, sources=label.sources)
        if not await self._stores.turns.claim_paused(turn_id, label=label, seen=stored):
            if await self._stores.turns.status_of(turn_id) == TurnStatus.AWAITING_APPROVAL:
                return await self.resume(turn_id)  # scrubbed by a forgetting meanwhile: again
            return None  # another resume took it meanwhile
        ctx = self.tool_context(request, turn_id)
        turn = _Turn(
            id=turn_id,
            request=request,
            ctx=ctx,
            mcp_offered=await self._policy.mcp_offered(ctx),
            system=self._context.system(request),
            messages=messages,
            usage=state.token_usage,
            recorded=state.token_usage.total,
            steps=stored.steps,
            label=label,
            prompt=state.prompt,
        )
        async with self._one_at_a_time(request.user):
            return await self._loop(turn)

    async def _request_for(self, stored: StoredTurn, state: PausedState) -> TurnRequest | None:
        user = await self._stores.people.get(stored.user_id) if stored.user_id else None
        chat = await self._stores.people.chat_by_id(stored.chat_id) if stored.chat_id else None
        if user is None:
            return None
        address = Address(**state.address) if state.address else None
        return TurnRequest(
            kind=stored.kind,
            user=user,
            chat=chat,
            address=address,
            text="",
            message_id=stored.message_id,
            tainted=stored.label.tainted,
        )

    async def _loop(self, turn: _Turn) -> TurnOutcome:
        assert self._model is not None
        try:
            while True:
                reply = await self._ask(turn)
                turn.usage += reply.usage
                turn.steps += 1
                turn.messages.append(Message.from_api(reply.as_message()))
                if reply.stop_reason != "tool_use" or not reply.tool_calls:
                    text = _final_text(reply)
                    if reply.stop_reason == "refusal":  # kept, it sets off more refusals
                        await self._stores.messages.leave_out(turn.id, turn.request.message_id)
                    if text.strip() != SILENT_REPLY:  # a self-initiated turn's "nothing to say"
                        text = _joined([*turn.said, text]) or self._wordless(turn)
                    return await self._end(turn, TurnStatus.COMPLETED, text)
                await self._record_usage(turn)  # before its tools run: a crash keeps it
                paused = await self._run_tools(turn, reply.tool_calls)
                if paused:
                    await self._pause(turn, paused)
                    return TurnOutcome(
                        _joined([*turn.said, reply.text]),
                        TurnStatus.AWAITING_APPROVAL,
                        turn.id,
                        turn.usage,
                        turn.steps,
                        paused.approvals,
                        label=turn.label,
                        refused=_take(turn.refused),
                    )
                turn.said.append(reply.text)
                if await self._allowance_spent(turn):
                    text = _joined([*turn.said, GUEST_SPENT_MIDWAY])
                    return await self._end(turn, TurnStatus.STEP_LIMIT, text)
                if await self._budget_spent_midway(turn):
                    text = _joined([*turn.said, BUDGET_SPENT_MIDWAY])
                    return await self._end(turn, TurnStatus.STEP_LIMIT, text)
                if turn.steps >= self._max_steps:
                    text = _joined(
                        [
                            *turn.said,
                            f"I stopped after {turn.steps} steps, the most one turn may take "
                            "(STEWARD_MAX_STEPS). Tell me to continue if you want me to go on.",
                        ]
                    )
                    return await self._end(turn, TurnStatus.STEP_LIMIT, text)
        except ModelUnavailable as exc:
            # the API's own words too (R179: "the details are in the log", and they were not)
            log.warning("turn %s: model unavailable: %s %s", turn.id, exc.reason, exc.detail)
            billed = isinstance(exc, BilledUnavailable)
            if billed:  # a stream the API billed before it failed (R199)
                turn.usage += exc.usage
            await self._finish(turn, TurnStatus.FAILED, exc.reason)
            text = f"Sorry, I couldn't answer: {exc.reason}."
            done = self._already_done(turn)
            maybe = self._already_done(turn, uncertain=True)
            refused = exc.status is not None and 400 <= exc.status < 500
            refused = refused and exc.status not in (408, 429)
            if done:
                # said before "try again", and kept in the history the next turn reads: trying
                # again must not do it a second time (a second reminder)
                text += (
                    " Already done before the failure (asking again would do it twice): "
                    + _named(done)
                    + "."
                )
            if maybe:  # R203: "please try again" after a mail that may have gone out
                text += (
                    " This may already have been done (its answer was lost; check before "
                    "asking again, or it may be done twice): " + _named(maybe) + "."
                )
            if maybe and not refused:
                text += " I gave up for now."
            elif refused:
                # refused, not failing: no retry was made, and waiting will not change it
                text += (
                    " Trying again will not help until that is fixed; the details are in "
                    "Steward's log."
                )
            elif billed and not exc.retried:  # too slow: given up at once, not tried again
                text += (
                    " Please try again in a little while; if long answers often take this "
                    "long, give them more time in Steward's settings, e.g. "
                    "STEWARD_MODEL_TIMEOUT=300."
                )
            else:
                text += (
                    " I tried several times with backoff and gave up for now; please try again "
                    "in a little while."
                )
            return TurnOutcome(
                text,
                TurnStatus.FAILED,
                turn.id,
                turn.usage,
                turn.steps,
                label=turn.label,
                refused=_take(turn.refused),
                failure=exc.reason,
                retryable=not refused and not done and not maybe,
            )

    def _wordless(self, turn: _Turn) -> str:
        """What a turn the model ended without a word says (R156: "(done)", when nothing was):
        the actions it ran; a check-in's nothing to say; else that the model gave none."""
        if done := self._already_done(turn):
            return f"Done: {_named(done)}."
        if turn.request.kind == "checkin":
            return SILENT_REPLY  # a check-in with nothing to say; a task or briefing is owed
        if turn.request.self_initiated:  # an answer (R157: dropped as if it chose silence)
            return f"(The model gave no answer for this {turn.request.kind}.)"
        return "(The model gave no answer this time; please ask again.)"

    def _already_done(self, turn: _Turn, *, uncertain: bool = False) -> list[str]:
        """The actions this turn's steps ran (a tool above read, whose result was not an
        error), one short line each, in order: what a turn that failed part-way had done.
        `uncertain`: instead, those whose answer was lost, so they may have run (R203)."""
        results = {
            part.tool_use_id: part
            for message in turn.after_prompt()
            for part in message.content
            if isinstance(part, ToolResultPart)
        }
        done: list[str] = []
        for message in turn.after_prompt():
            for part in message.content:
                if not isinstance(part, ToolUsePart):
                    continue
                result = results.get(part.id)
                tool = self._tools.get(part.name)  # None: gone since (an MCP server's)
                if result is None:
                    continue  # never reached
                maybe = result.content.startswith(MAY_HAVE_BEEN_DONE)
                if maybe is not uncertain or (result.is_error and not maybe):
                    continue  # not run (refused, failed), or not of the kind asked for
                if tool is not None and tool.risk is Risk.READ:
                    continue  # reading again changes nothing
                done.append(_refusal(part.name, part.input))
        return done

    async def _ask(self, turn: _Turn) -> ModelReply:
        """One model call, streamed to the live reply while the turn holds nothing from outside."""
        assert self._model is not None
        tools = self._tools.schemas(turn.id, turn.mcp_offered)
        if offered := self._tools.offered_sources(turn.id, turn.mcp_offered):  # MCP servers' words
            await self._taint(turn, Label.untrusted(*offered))
        if turn.stream is not None and turn.label.tainted:
            await turn.stream.stop()  # before the model reads outside content
            turn.stream = None
        reply, turn.stream = await ask_streamed(
            self._model,
            turn.stream,
            system=turn.system,
            messages=turn.to_send(),
            tools=tools,
        )
        return reply

    async def _record_usage(self, turn: _Turn) -> None:
        """The turn's steps and tokens so far into its row, after a model call it goes on
        from: a turn cut short by a crash kept 0 tokens in /usage and the budget while the
        API had billed each call (R199). One UPDATE per such call."""
        await self._stores.turns.set_usage(
            turn.id, steps=turn.steps, usage=turn.usage, cost_usd=self._cost(turn.usage)
        )
        turn.recorded = turn.usage.total

    async def _taint(self, turn: _Turn, label: Label) -> None:
        """Join `label` into the turn's, stored at once when it grows: a crash mid-turn must
        not leave the turn looking as trusted as it started."""
        before = turn.label
        turn.taint(label)
        if turn.label != before:
            await self._stores.turns.set_label(turn.id, turn.label)

    async def _run_tools(self, turn: _Turn, calls: list[ToolCall]) -> _Paused | None:
        """Run one step's tool calls; returns what waits for the owner, if anything does."""
        done: dict[str, ToolResultPart] = {}
        waiting: list[Approval] = []
        for call in calls:
            outcome = await self._call(turn, call)
            if isinstance(outcome, ToolResult):
                label = Label.untrusted(outcome.source) if outcome.source is not None else Label()
                done[call.id] = ToolResultPart(
                    tool_use_id=call.id,
                    content=fenced_result(outcome),
                    is_error=outcome.is_error,
                    label=label.sources,
                )
                await self._taint(turn, label)
            else:
                waiting.append(outcome)
        if not waiting:
            turn.messages.append(Message(role="user", content=[done[c.id] for c in calls]))
            return None
        return _Paused([c.id for c in calls], done, tuple(waiting))

    async def _call(self, turn: _Turn, call: ToolCall) -> ToolResult | Approval:
        """One tool call through the policy: a result, or an approval the owner must decide."""
        audit = self._stores.audit
        actor = f"turn:{turn.id}"
        tool = self._tools.get(call.name)
        if (
            tool is None
            and turn.ctx.user.is_owner
            and self._tools.missing(call.name) is Missing.DOWN
        ):
            # the owner's MCP server restarting: said so, not "blocked" in the owner's notice
            # as a name made up (R161). Not to another person: it would tell them which servers
            # the owner has (R162); nor for a server up without the name (made up, perhaps).
            await audit.record("tool.unavailable", actor=actor, subject=call.name[:64])
            why = "is not running right now (it is being started again; /mcp shows it)"
            return ToolResult(f"{call.name} cannot run: its MCP server {why}; nothing ran", True)
        offered = turn.mcp_offered
        if (
            tool is not None
            and call.name.startswith("mcp_")  # a server's tools, and the search among them
            and offered
            # the search lists every server's: another person is offered theirs directly
            and (not call.name.startswith("mcp__") or not offered(call.name))
        ):
            tool = None  # an MCP tool not offered to this person: as if there were none (R163)
        if tool is None:
            await audit.record("tool.unknown", actor=actor, subject=call.name[:64])
            turn.refused.append(_refusal("unknown tool", {"title": call.name[:40]}))
            return ToolResult(f"there is no tool named {call.name!r}", is_error=True)
        ctx = turn.ctx
        try:
            arguments = tool.validate(call.input)
            if tool.precheck is not None:
                await tool.precheck(ctx, arguments)
        except (ToolError, OSError) as exc:  # OSError: e.g. a path too long for the disk
            reason = str(exc) if isinstance(exc, ToolError) else f"refused: {exc.strerror or exc}"
            await audit.record("tool.refused", actor=actor, subject=tool.name, reason=reason)
            if reason.startswith("refused"):
                turn.refused.append(_refusal(tool.name, call.input))
            told = refusal_told(ctx, tool, reason)
            # quotes outside words
            source = exc.source if isinstance(exc, ToolError) and told == reason else None
            return ToolResult(told, is_error=True, source=source)
        verdict = await self._policy.decide(tool, arguments, ctx)
        where = (  # the chat, for the console's filter by chat (R138: it found no tool calls)
            {"chat": f"{ctx.address.channel}:{ctx.address.chat_id}"} if ctx.address else {}
        )
        await audit.record(
            "tool.requested",
            actor=actor,
            subject=tool.name,
            **where,
            risk=tool.risk.value,
            decision=verdict.decision.value,
            reason=verdict.reason,
            tainted=ctx.tainted,
            sources=list(turn.label.sources),
            **tool.audit_detail,
        )
        if verdict.decision is Decision.DENY:
            turn.refused.append(_refusal(tool.name, arguments))
            return ToolResult(f"refused: {verdict.reason}", is_error=True)
        if verdict.decision is Decision.ASK:
            if self._approvals is None or ctx.address is None:
                return ToolResult(
                    f"refused: {tool.name} needs the owner's approval ({verdict.reason}), and "
                    "there is no chat to ask in. Tell the user what you wanted to do.",
                    is_error=True,
                )
            asked = await self._approvals.request(
                ctx, tool, call, arguments, verdict, list(turn.label.sources)
            )
            if isinstance(asked, ToolResult) and asked.refused:
                turn.refused.append(_refusal(tool.name, arguments) + " (refused without asking)")
            return asked
        result = await tool.run(ctx, arguments)
        await audit.record(
            "tool.ran",
            actor=actor,
            subject=tool.name,
            **where,
            is_error=result.is_error,
            result_chars=len(result.content),
            **tool.audit_detail,
        )
        return result

    async def _pause(self, turn: _Turn, paused: _Paused) -> None:
        address = turn.request.address
        state = PausedState(
            order=paused.order,
            results=paused.results,
            usage=dict(turn.usage.__dict__),
            label=turn.label.sources,
            address=address.__dict__ if address else None,
            prompt=turn.prompt,
        )
        await self._stores.turns.pause(
            turn.id,
            steps=turn.steps,
            usage=turn.usage,
            cost_usd=self._cost(turn.usage),
            transcript=dump_transcript(turn.transcript()),
            paused_state=state.model_dump_json(),
            label=turn.label,
        )

    async def _end(self, turn: _Turn, status: TurnStatus, text: str) -> TurnOutcome:
        await self._finish(turn, status, None)
        return TurnOutcome(
            text,
            status,
            turn.id,
            turn.usage,
            turn.steps,
            label=turn.label,
            refused=_take(turn.refused),
        )

    async def _finish(self, turn: _Turn, status: TurnStatus, error: str | None) -> None:
        await self._stores.turns.finish(
            turn.id,
            status=status,
            steps=turn.steps,
            usage=turn.usage,
            cost_usd=self._cost(turn.usage),
            transcript=dump_transcript(turn.after_prompt()),
            label=turn.label,
            error=error,
        )

    def _cost(self, usage: TokenUsage) -> float:
        return estimate_cost(self._model.name if self._model else "", usage)

    def day_start(self, request: TurnRequest) -> datetime:
        zone = ZoneInfo(request.user.timezone or self._deps.timezone)
        today = self._clock.now().astimezone(zone).date()
        return datetime.combine(today, time(0), zone)

    def week_start(self, request: TurnRequest) -> datetime:
        day = self.day_start(request)
        return day - timedelta(days=day.weekday())

    def budget_day_start(self) -> datetime:
        """Where the budget's day begins: STEWARD_TIMEZONE's midnight. The budget is the whole
        deployment's; counted from the asker's own midnight, anyone could move its day with
        /timezone (a zone that just passed midnight) and spend it again."""
        zone = ZoneInfo(self._deps.timezone)
        return datetime.combine(self._clock.now().astimezone(zone).date(), time(0), zone)

    async def over_budget(self, request: TurnRequest) -> bool:
        """True when today's tokens passed STEWARD_DAILY_TOKEN_BUDGET (0 means no budget)."""
        if self._daily_token_budget <= 0:
            return False
        return await self.budget_spent() >= self._daily_token_budget

    async def budget_spent(self) -> int:
        """Today's tokens against the budget: other people's turns are not in it (a friend
        chatting paused the owner's briefings); their own allowance bounds them."""
        return await self._stores.turns.budget_tokens_since(self.budget_day_start())

    async def guest_over_allowance(self, request: TurnRequest) -> bool:
        """Someone other than the owner who has used today's STEWARD_GUEST_DAILY_TOKENS (0: no
        allowance), in conversation or in a check-in or reminder they set up: those are
        theirs, not the owner's budget (a guest's daily check-ins paused the briefings)."""
        left = await self.guest_allowance_left(request.user)
        return left is not None and left <= 0

    async def guest_allowance_left(self, user: User) -> int | None:
        """Tokens left of today's STEWARD_GUEST_DAILY_TOKENS for someone other than the owner
        (None: the owner, or no allowance): what the files of their message may take (R197)."""
        if user.is_owner or self._guest_daily_tokens <= 0:
            return None
        spent = await self._stores.turns.guest_tokens_since(user.id, self.budget_day_start())
        return max(0, self._guest_daily_tokens - spent)

    async def _allowance_spent(self, turn: _Turn) -> bool:
        """A guest's allowance spent part-way through a turn, checked before each model call
        after the first (R177: 8 steps of 20 searches each, one turn, spent 5.7 days of it)."""
        request = turn.request
        if request.user.is_owner or self._guest_daily_tokens <= 0:
            return False
        before = await self._stores.turns.guest_tokens_since(
            request.user.id, self.budget_day_start()
        )
        return before - turn.recorded + turn.usage.total >= self._guest_daily_tokens

    async def _budget_spent_midway(self, turn: _Turn) -> bool:
        """The daily budget spent part-way through a self-initiated turn of the owner's,
        checked before each model call after the first, as a guest's allowance is (R199: a
        task calling a tool at every step spent 339,796 tokens of a 1,000 budget). Other
        people's turns and comment summaries are not in the budget: they have their own."""
        request = turn.request
        if self._daily_token_budget <= 0 or not request.self_initiated:
            return False
        if not request.user.is_owner or request.kind == "comments":
            return False
        spent = await self.budget_spent() - turn.recorded + turn.usage.total
        return spent >= self._daily_token_budget

    async def comments_share_spent(self) -> bool:
        """Whether today's summaries of comments under the owner's channel posts used up their
        share: anyone may write those comments, so together they get one person's
        STEWARD_GUEST_DAILY_TOKENS (0: no limit), outside the owner's budget."""
        if self._guest_daily_tokens <= 0:
            return False
        spent = await self._stores.turns.kind_tokens_since("comments", self.budget_day_start())
        return spent >= self._guest_daily_tokens


def _take(items: list[str]) -> tuple[str, ...]:
    taken = tuple(items)
    items.clear()
    return taken


def _refusal(tool: str, arguments: dict[str, Any]) -> str:
    """One short line naming an action (one refused, or one done): the tool and its main
    argument."""
    main = next(
        (str(arguments[k]) for k in ("command", "path", "url", "text", "title") if k in arguments),
        json.dumps(arguments, ensure_ascii=False),
    )
    main = " ⏎ ".join(main.splitlines()) or main  # one line: no paragraph of its own
    if len(main) > 60:
        main = main[:59] + "…"
    verb = {"write_file": "write", "read_file": "read", "web_fetch": "fetch"}.get(tool, tool)
    # a code span whose fence is longer than any run of backticks inside: the argument (an
    # attacker's words) cannot close it and write on in Steward's own voice
    longest = max((len(run) for run in re.findall(r"`+", main)), default=0)
    fence = "`" * (longest + 1)
    # always padded: an empty argument made "``", one run of two, which paired with a later
    # argument's backticks and let its rest be read as Markdown
    return f"{verb} {fence} {main or '(empty)'} {fence}"


def _named(done: list[str]) -> str:
    """Actions as one list, the first `MAX_DONE_NAMED` by name."""
    more = len(done) - MAX_DONE_NAMED
    return ", ".join(done[:MAX_DONE_NAMED] + ([f"and {more} more"] if more > 0 else []))


def _joined(parts: list[str]) -> str:
    """A turn's texts as one answer, in the order written (empty ones left out, and those of
    invisible characters alone: U+3164 alone was sent as a blank message, R199)."""
    return "\n\n".join(part.strip() for part in parts if visible(part))


_CUT = {
    # why the answer stopped: (said after an action cut off, said after words cut off)
    "max_tokens": (
        "I was cut off by the length limit (STEWARD_MAX_TOKENS) while preparing an action, so "
        "that action was not taken; ask again, perhaps in smaller steps.",
        'My answer was cut off here by the length limit (STEWARD_MAX_TOKENS); say "continue" '
        "for the rest.",
    ),
    # R261: the conversation filled the model's context window: an answer that looked whole
    "model_context_window_exceeded": (
        "This conversation filled what the model can read at once while I was preparing an "
        "action, so that action was not taken. Send /new to start a new conversation (what we "
        "said stays saved), then ask again.",
        "My answer was cut off here: this conversation filled what the model can read at once. "
        "Send /new to start a new conversation (what we said stays saved), then ask for the rest.",
    ),
}
REFUSAL_NOTE = (
    "The model declined to go on with this answer; it stops here. This exchange is left out of "
    "our conversation from now on: please rephrase your request."
)
NOT_RUN = "The model stopped before the action it was preparing could run, so it was not taken."


def _final_text(reply: ModelReply) -> str:
    """The reply's text as the person should read it: an answer the length limit or a full
    context cut off says so (it looked finished), one cut inside a tool call says the action
    was not taken (whatever else stopped the model there, R261), and one the model declined
    part-way says it stops there and is left out of the conversation (`_loop`)."""
    text = reply.text
    stop = reply.stop_reason
    if stop in _CUT:
        note = _CUT[stop][0 if reply.tool_calls else 1]
    elif stop == "refusal":
        # declined part-way: the words before it are not the whole answer, and must not look so
        if not visible(text):
            return "(The model declined to answer this.)"
        note = f"{NOT_RUN} {REFUSAL_NOTE}" if reply.tool_calls else REFUSAL_NOTE
    elif reply.tool_calls:  # a tool call the loop does not run (not "tool_use"): said so
        note = NOT_RUN
    else:
        return text
    if not visible(text):
        return f"[{note}]"
    # a note after an unclosed ``` would read as code
    return close_open_fence(text).rstrip() + f"\n\n[{note}]"
