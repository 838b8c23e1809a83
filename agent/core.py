"""The shared core every channel and the scheduler talk to: run a turn, deliver its reply,
ask the owner before risky actions and resume when they decide.

(Over 400 lines: a turn, its delivery and the approval cycle around it — card, decision,
expiry, resumption — share one chat's place in line and the same stores; split, each half
would reach back into the other.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from agent.approvals import (
    CLOCK_SLACK,
    RESUME_WITHIN,
    ApprovalService,
    Decided,
    Outcome,
    arguments_preview,
)
from agent.budget_notice import BudgetNotices
from agent.cards import describe_sources, escape_invisible, plain_name
from agent.config import Settings
from agent.delivery import Courier, private_address
from agent.outbox import DeliveryError, Outbox, Switchboard
from agent.policy import PolicyEngine, PolicyError
from agent.ports import Scheduling
from agent.sequencer import ChatSequencer
from agent.streaming import ReplyStream
from agent.tools.registry import Risk, ToolContext, ToolRegistry
from agent.turn import TurnRunner
from agent.types import SILENT_REPLY, Address, ApprovalPrompt, TurnOutcome, TurnRequest
from memory.approvals import Approval, ApprovalStatus
from memory.clock import Clock
from memory.labels import TRUSTED, Label
from memory.people import Chat, Identity, User
from memory.stores import Stores
from memory.turns import TurnStatus

if TYPE_CHECKING:
    from agent.mail.watch import MailWatcher
    from agent.mcp import McpSupervisor
    from agent.memory_service import MemoryService

__all__ = ["SILENT_REPLY", "Steward"]

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 4.0
TELL_OWNER_EVERY = 300.0  # s between notices of one person's requests


@dataclass
class Steward:
    settings: Settings
    stores: Stores
    clock: Clock
    runner: TurnRunner
    courier: Courier
    tools: ToolRegistry
    started_at: datetime
    approvals: ApprovalService | None = None
    policy: PolicyEngine | None = None
    scheduler: Scheduling | None = None
    """The scheduler, by its port: it reaches back only through `respond` (a `Responder`)."""
    memory: MemoryService | None = None
    sequencer: ChatSequencer = field(default_factory=ChatSequencer)
    """Every turn takes its chat's place here: messages, scheduled jobs, resumed approvals."""
    mcp: McpSupervisor | None = None
    """The MCP servers (started after the channels by the composition root)."""
    mail: MailWatcher | None = None
    """The mailbox watcher and, as `mail.service`, the mailbox (EMAIL_* settings)."""
    _told: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    """When the owner was last told of each person's request (time.monotonic())."""
    _resuming: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    """Turns resumed by a decision made in another chat, each in a task of its own (R205)."""

    async def aclose(self) -> None:
        for task in list(self._resuming):  # a restart's recovery resumes it again
            task.cancel()
        await asyncio.gather(*self._resuming, return_exceptions=True)
        if self.mail is not None:
            await self.mail.stop()
        if self.mcp is not None:
            await self.mcp.stop()
        if self.memory is not None:
            await self.memory.stop()
        await self.runner.aclose()

    @property
    def outbox(self) -> Outbox:
        return self.courier.outbox

    @property
    def switchboard(self) -> Switchboard:
        """Where channels register as they start."""
        assert isinstance(self.courier.outbox, Switchboard)
        return self.courier.outbox

    async def respond(
        self, request: TurnRequest, *, footer: str = "", hold_failure: bool = False
    ) -> TurnOutcome:
        """Run a turn for `request` and deliver its reply to `request.address`.

        A self-initiated turn whose answer is exactly SILENT_REPLY sends nothing (a check-in
        with nothing to say); `footer` is appended to the reply (the briefing's failed feeds);
        with `hold_failure` a failed turn sends nothing (a scheduled job tries again, or says
        which job failed: "please try again" answered no question, R156).
        """
        stream = self._stream_for(request)
        access = self.stores.messages.access_changes
        if stream is not None:

            async def still_ours() -> bool:
                changed = access != self.stores.messages.access_changes
                return not changed or not await self._chat_taken(request)

            stream.still_ours = still_ours
        try:
            async with self.sequencer.turn(request.address), self.typing(request.address):
                outcome = await self.runner.run(request, stream=stream)
            if access != self.stores.messages.access_changes and await self._taken(request):
                return outcome
            if hold_failure and outcome.status is TurnStatus.FAILED:
                return outcome
            return await self._respond(request, outcome, footer, stream)
        finally:
            if stream is not None:
                await stream.close()

    async def _taken(self, request: TurnRequest) -> bool:
        """Whether the chat was taken from the person the turn answers while it ran (R132: an
        account unlinked, or a guest revoked, mid-turn got the answer all the same): then its
        reply is withheld."""
        if not await self._chat_taken(request):
            return False
        chat, user = request.chat, request.user
        assert chat is not None
        log.warning("chat %s was taken from user %s mid-turn: reply withheld", chat.id, user.id)
        await self.stores.audit.record(
            "turn.reply_withheld", actor="steward", subject=f"chat:{chat.id}", user=user.id
        )
        return True

    async def _chat_taken(self, request: TurnRequest) -> bool:
        chat, user = request.chat, request.user
        if request.self_initiated or chat is None:
            return False
        people = self.stores.people
        return not (
            await people.may_talk(user.id)  # in a group too (R136)
            and (
                chat.kind != "private"
                or await people.is_own_chat(user.id, chat.channel, chat.platform_chat_id)
            )
        )

    def _stream_for(self, request: TurnRequest) -> ReplyStream | None:
        """A live view of the answer for the owner's own chat turns (STEWARD_STREAMING): never
        for briefings, reminders or other self-initiated work, nor for a turn that starts with
        outside content (another person's words, a forward), nor where the channel cannot."""
        if not self.settings.streaming or request.self_initiated or request.address is None:
            return None
        if request.label.tainted:
            return None
        open_live = getattr(self.outbox, "open_live", None)
        live = open_live(request.address) if open_live is not None else None
        return ReplyStream(live) if live is not None else None

    async def _respond(
        self, request: TurnRequest, outcome: TurnOutcome, footer: str, stream: ReplyStream | None
    ) -> TurnOutcome:
        if outcome.status is TurnStatus.SKIPPED and request.self_initiated:
            if outcome.skipped_for == "budget":  # not another person's allowance, not a key
                await self._tell_owner_budget_spent(request)
            return outcome
        text = outcome.text
        if request.self_initiated and text.strip() == SILENT_REPLY:
            text = ""
        elif footer and text:
            text += footer
        chat_id = request.chat.id if request.chat else None
        await self._deliver(replace(outcome, text=text), request.address, chat_id, stream)
        if stream is not None:
            await stream.close()
        if self.memory is not None:
            # extraction and compaction, once the reply is out: in the background, so the
            # chat's next message does not wait behind them (memory_service.after_turn)
            self.memory.after_turn(request, outcome)
        return outcome

    async def _deliver(
        self,
        outcome: TurnOutcome,
        address: Address | None,
        chat_id: int | None,
        stream: ReplyStream | None = None,
    ) -> None:
        if address is None or chat_id is None:
            return
        if outcome.text:
            live = None
            if stream is not None and outcome.label.tainted:
                await stream.stop()  # a tainted turn's reply goes out whole, never edited in
            elif stream is not None:
                live = await stream.handoff()
            await self.courier.send(
                address,
                chat_id,
                outcome.text,
                turn_id=outcome.turn_id,
                label=outcome.label,
                live=live,
            )
        for approval in outcome.approvals:
            await self._prompt(address, approval)
        if outcome.refused and outcome.label.tainted:
            await self._tell_refused(outcome, address, chat_id)

    async def _tell_refused(self, outcome: TurnOutcome, address: Address, chat_id: int) -> None:
        """Once per turn that held outside content, what the policy refused and on whose
        behalf (a compromised model would not say). Written by Steward, not the model, and kept
        out of the model's history, as it quotes what was attempted."""
        count = len(outcome.refused)
        actions = "action" if count == 1 else "actions"
        who = "prompted by " + describe_sources(outcome.label.sources)
        text = f"Blocked {count} {actions} {who}: " + ", ".join(
            escape_invisible(line) for line in outcome.refused
        )
        await self.stores.audit.record(
            "turn.refusals_told", actor="steward", subject=f"turn:{outcome.turn_id}", count=count
        )
        await self.courier.send(
            address, chat_id, text, turn_id=outcome.turn_id, in_history=False, label=outcome.label
        )

    async def _prompt(self, address: Address, approval: Approval) -> None:
        # the time left (R151: a card shown again after a stop said its whole first lifetime)
        left = approval.expires_at - max(approval.requested_at, self.clock.now())
        minutes = max(1, round(left.total_seconds() / 60))
        requester = await self.stores.people.get(approval.user_id)
        chat = await self.stores.people.chat_by_id(approval.chat_id) if approval.chat_id else None
        preview = (  # as whoever reads that chat may read it (review 86)
            await self.approvals.preview_for(
                approval, requester, private=chat is not None and chat.kind == "private"
            )
            if self.approvals is not None and requester is not None
            else arguments_preview(approval)
        )
        prompt = ApprovalPrompt(
            approval_id=approval.id,
            tool=approval.tool,
            preview=preview,
            reason=f"{approval.reason}. Expires in {minutes} min.",
        )
        try:
            platform_id = await self.courier.send_approval(address, prompt)
        except DeliveryError as exc:
            # a card is not queued (its buttons would press on nothing after a restart): a
            # plain note is, redelivered like a reply, so the request is never lost in silence
            log.warning("approval prompt %s not delivered: %s", approval.id, exc)
            if approval.chat_id is not None:
                await self.courier.send(
                    address,
                    approval.chat_id,
                    f"An action waits for approval ({approval.tool}, request {approval.id}), "
                    f"but its card could not be shown. Whoever may decide it: /approve show "
                    f"{approval.id} shows it; /approve {approval.id} or /deny {approval.id} "
                    f"decides it. It expires in {minutes} min.",
                    in_history=False,  # an approval id never reaches the model
                    label=TRUSTED,
                )
            await self._tell_owner_of(approval, address)  # another person's: the owner decides
            return
        await self.stores.approvals.set_prompt_message(approval.id, platform_id)
        await self._tell_owner_of(approval, address)

    async def show_card(self, approval: Approval) -> None:
        """Show a pending request's card in the chat it was asked in (one a stop kept from
        being shown: R149)."""
        if approval.channel is None or approval.platform_chat_id is None:
            return
        address = Address(approval.channel, approval.platform_chat_id, approval.thread_id)
        await self._prompt(address, approval)

    async def _tell_owner_of(self, approval: Approval, address: Address) -> None:
        """Another person's request waits on a card in their chat, where the owner may never
        look, and some (the owner's own things) only the owner may approve: the owner is told
        in their private chat, by name and tool, and decides with /approve or /deny there."""
        requester = await self.stores.people.get(approval.user_id)
        owner = await self.stores.people.owner()
        if requester is None or requester.is_owner or owner is None:
            return
        now = time.monotonic()
        if now - self._told.get(requester.id, -TELL_OWNER_EVERY) < TELL_OWNER_EVERY:
            return  # one notice per person at most every few minutes: /approve lists the rest
        found = await self._owners_private_chat(owner)
        if found is None:
            return
        self._told[requester.id] = now
        where, chat = found
        # the name is theirs to choose: plain text, no Markdown to dress it up as Steward's words
        name = plain_name(requester.display_name)
        text = (
            f"{name or 'Someone'} (person #{requester.id}) asked, in "
            f"{escape_invisible(str(address))}, for {approval.tool} (request {approval.id}). "
            f"/approve show {approval.id} shows it whole; /approve {approval.id} or "
            f"/deny {approval.id} decides it; /approve lists what else waits."
        )
        # the name is the person's own words: the notice carries their label, out of history
        label = Label.untrusted(f"person:#{requester.id}")
        await self.courier.send(where, chat.id, text, label=label, in_history=False)

    async def decide_approval(
        self,
        approval_id: str,
        *,
        identity: Identity,
        user: User | None,
        approve: bool,
        always: bool = False,
        in_the_open: bool = False,
        resume_later: bool = False,
    ) -> str:
        """Apply the owner's decision, run the approved call, and resume its turn.
        `in_the_open`: typed in a group or a channel, where everyone reads the answer: it names
        the tool and the id alone, the rest goes to a private chat (R262: "always" posted a
        private goal's title to a group). `resume_later`: the caller answers once the call
        ran, and the turn goes on in a task of its own (R265: the web console's Approve kept
        the page loading behind the chat's turn and the whole resumed turn, minutes with a
        slow model)."""
        if self.approvals is None:
            return "Approvals are not enabled."
        owner = user is not None and user.is_owner
        if always and approve and not owner and self.approvals.may_decide(identity, user):
            # "always" writes a rule into the owner's policy file: approvers decide one action.
            # Anyone else is refused below as for any decision, and each refusal is audited
            # only at the 1st, 2nd, 4th … (R182: 100 lines of "/approve x always" from a guest
            # were 100 events, and told them to "approve it once")
            await self.approvals.refused("approval.always_refused", identity, approval_id[:16])
            return "Only the owner can approve always (a rule in the policy file); approve it once."
        decided = await self.approvals.decide(
            approval_id, identity=identity, user=user, approve=approve, ctx_for=self._ctx_for
        )
        note = decided.message
        if decided.outcome is Outcome.EXECUTED and always and self.policy is not None:
            note += "\n" + await self._allow_always(decided, identity)
        if decided.approval is not None and decided.outcome in (
            Outcome.EXECUTED,
            Outcome.DENIED,
            Outcome.CHANGED,
            Outcome.EXPIRED,
        ):
            said = decided.message  # an expired one was decided by nobody
            if decided.outcome is not Outcome.EXPIRED:
                said += f" (decided by {_decider(decided.approval, identity, owner=owner)})"
            await self._mark(decided.approval, said)
            await self._resume_after(decided.approval, later=resume_later)
        elif decided.approval is not None and decided.outcome is Outcome.WITHDRAWN:
            await self._mark(decided.approval, decided.message)  # their turn is not resumed
        shown = decided.in_the_open or decided.message
        if in_the_open and note != shown:
            return await self._aside(note, shown, user)
        return note

    async def _aside(self, note: str, shown: str, user: User | None) -> str:
        """R262: a decision typed in a group or a channel is answered there by the tool and the
        id alone; the rule "always" wrote and the call's own words (a goal's title, a mail's
        recipient) go to the decider's private chat, or nowhere if none is known."""
        found = await self._owners_private_chat(user) if user is not None else None
        if found is None:
            return f"{shown}\nThe rest of the answer is for a private chat; I know none of yours."
        where, chat = found
        await self.courier.send(where, chat.id, note, in_history=False, label=TRUSTED)
        return f"{shown}\nThe rest of the answer went to your private chat with me."

    async def expire_approvals(self) -> int:
        """Expire what waited too long; the turn is told it was not approved."""
        if self.approvals is None:
            return 0
        count = 0
        now = self.clock.now()
        for approval in await self.stores.approvals.due_to_expire(now, CLOCK_SLACK):
            if await self.approvals.expire(approval):
                count += 1
                await self._mark(approval, f"{approval.id} expired: {approval.tool} did not run.")
                if now - approval.expires_at <= RESUME_WITHIN:
                    await self.resume(approval.turn_id)
                else:  # expired while Steward was down for days: no reply out of the blue
                    await self._close_stale(approval.turn_id)
        return count

    async def _close_stale(self, turn_id: int) -> None:
        """A turn whose last request expired long ago ends unanswered (review 89), as a restart
        closes one decided long ago (bot/recovery.py), once every request of it is decided."""
        if any(not a.decided for a in await self.stores.approvals.for_turn(turn_id)):
            return
        label = await self.stores.turns.label_of(turn_id)
        await self.stores.turns.end_paused(turn_id, TurnStatus.INTERRUPTED, label=label)
        await self.stores.audit.record(
            "turn.interrupted", actor="steward", subject=f"turn:{turn_id}"
        )

    async def _resume_after(self, approval: Approval, *, later: bool = False) -> None:
        """Resume the turn a decision was made for: here, when this task holds no other chat's
        place (its own chat, the sweeper) and the caller waits for it; from a decision typed in
        another chat, or `later`, in a task of its own, so that chat waits for nothing of the
        card's chat (R205: two chats each deciding the other's card waited on each other for
        good)."""
        if not later and not self.sequencer.holds_other(_address_of(approval)):
            await self.resume(approval.turn_id)
            return
        task = asyncio.create_task(self.resume(approval.turn_id))
        self._resuming.add(task)
        task.add_done_callback(self._resumed)

    def _resumed(self, task: asyncio.Task[None]) -> None:
        self._resuming.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("resuming a turn failed", exc_info=exc)

    async def resume(self, turn_id: int) -> None:
        """Continue a paused turn whose approvals are all decided, and deliver what it says
        (a turn with one still pending stays paused). A turn that completes gets the memory
        upkeep a turn that never paused gets (R206: a turn that asked for approval never had
        its facts kept nor its chat compacted)."""
        approvals = await self.stores.approvals.for_turn(turn_id)
        first = approvals[0] if approvals else None
        address = _address_of(first) if first is not None else None
        async with self.sequencer.turn(address):  # behind whatever that chat is doing
            outcome = await self.runner.resume(turn_id)
            chat_id = first.chat_id if first is not None else None
            if outcome is None or address is None or chat_id is None:
                return
            await self._deliver(outcome, address, chat_id)
            if self.memory is not None and outcome.status is TurnStatus.COMPLETED:
                request = await self._answered(turn_id, address)
                if request is not None:
                    self.memory.after_turn(request, outcome)

    async def _answered(self, turn_id: int, address: Address) -> TurnRequest | None:
        """The request a resumed turn answered, with its message's words, as memory upkeep
        reads it (the paused state keeps no request)."""
        stored = await self.stores.turns.stored(turn_id)
        if stored is None or stored.user_id is None or stored.message_id is None:
            return None
        user = await self.stores.people.get(stored.user_id)
        chat = await self.stores.people.chat_by_id(stored.chat_id) if stored.chat_id else None
        message = await self.stores.messages.get(stored.message_id)
        if user is None or message is None:
            return None
        return TurnRequest(
            kind=stored.kind,
            user=user,
            chat=chat,
            address=address,
            text=message.text,
            message_id=stored.message_id,
            tainted=stored.label.tainted,
            sources=stored.label.sources,
        )

    async def _ctx_for(self, approval: Approval) -> ToolContext:
        user = await self.stores.people.get(approval.user_id)
        chat = await self.stores.people.chat_by_id(approval.chat_id) if approval.chat_id else None
        assert user is not None
        address = _address_of(approval)
        label = await self.stores.turns.label_of(approval.turn_id)  # what the call stores
        request = TurnRequest(
            kind="approval",
            user=user,
            chat=chat,
            address=address,
            text="",
            tainted=approval.tainted or label.tainted,
            sources=label.sources,
        )
        return self.runner.tool_context(request, approval.turn_id, approved=True)

    async def _mark(self, approval: Approval, text: str) -> None:
        fresh = await self.stores.approvals.get(approval.id) or approval
        if fresh.channel is None or fresh.prompt_message_id is None:
            return
        address = Address(fresh.channel, fresh.platform_chat_id or "", fresh.thread_id)
        with contextlib.suppress(DeliveryError):
            await self.outbox.mark_approval(address, fresh.prompt_message_id, text)

    async def _allow_always(self, decided: Decided, identity: Identity) -> str:
        """Write the rule; the approved call has run already, so a rule that cannot be written
        is said and audited, and the turn still resumes."""
        assert self.policy is not None and decided.approval is not None
        approval = decided.approval
        refused = approval.result_is_error and _own_words(approval.result).startswith("refused")
        if approval.status is not ApprovalStatus.EXECUTED and refused:
            # R230: a call Steward refused (changed since the card, a link that leads
            # elsewhere) is reported as run (Outcome.EXECUTED); a rule from it could name a
            # world the card never showed. One that ran and failed (a command's exit status,
            # a page's 404) keeps its rule: the owner said always to that call
            await self.stores.audit.record(
                "policy.not_changed",
                actor=str(identity),
                subject=approval.tool,
                reason="the approved call was refused",
            )
            return "Approved this once; no rule was added (the call was refused)."
        requester = await self.stores.people.get(approval.user_id)
        person = None  # the owner's request: a rule for everyone; another's: for them alone
        if requester is not None and not requester.is_owner:
            identities = await self.stores.people.identities_of(requester.id)
            tool = self.tools.get(approval.tool)
            if not identities or tool is None or tool.risk is not Risk.READ or tool.reaches_out:
                # another person's turns hold outside content, so above read they always ask
                # (and a revoked person has no section to write in): a rule would never apply
                return "Approved this once; no rule was added (it could never apply to them)."
            person = str(identities[0])
        # an MCP tool's rule is bound to the tool as approved (server, target, schema); a
        # built-in tool's fingerprint is the state of the world (files), never bound into a rule
        bound = approval.fingerprint if approval.tool.startswith("mcp__") else None
        tool = self.tools.get(approval.tool)
        names = [approval.arguments]
        unseen: list[dict[str, Any]] = []
        if tool is not None and tool.aliases is not None:
            # the file a link led to, the address as servers decode it: each name the call
            # reached is decided by its own rules, so each gets its rule (R160)
            aliases = await tool.aliases(await self._ctx_for(approval), approval.arguments)
            if aliases and person is not None:
                # a rule of another person's for the link's target would outlive the link and
                # let them read it by its own name (R162); for the link alone it never applies
                # (R163)
                return (
                    "Approved this once; no rule was added (it reached another file through "
                    "a link)."
                )
            if tool.fingerprint is not None:
                # R230: looked up after the run, a link (world state, which the fingerprint
                # binds) may lead elsewhere now: a rule only for the target the card named
                unseen = [alias for alias in aliases if not _on_card(approval, alias)]
            names += [alias for alias in aliases if alias not in unseen]
        said = await self._write_rules(approval, names, person, bound, identity)
        if unseen:
            moved = "; ".join(_reached(approval.arguments, alias) for alias in unseen)
            said += (
                f"\nNo rule was added for {moved}: the card did not show it (the link leads "
                "there now)."
            )
        return said

    async def _write_rules(
        self,
        approval: Approval,
        names: list[dict[str, Any]],
        person: str | None,
        bound: str | None,
        identity: Identity,
    ) -> str:
        """An exact allow rule for each name the approved call reached, as the card showed it."""
        assert self.policy is not None
        try:
            written = [
                await asyncio.to_thread(
                    self.policy.add_rule_for, approval.tool, arguments, person, bound
                )
                for arguments in names
            ]
            rule = "; ".join(written)
        except (PolicyError, OSError) as exc:
            await self.stores.audit.record(
                "policy.not_changed",
                actor=str(identity),
                subject=approval.tool,
                reason=str(exc)[:300],
            )
            return f"Approved this once; no rule was added to the policy file ({exc})."
        await self.stores.audit.record(
            "policy.changed", actor=str(identity), subject=approval.tool, rule=rule
        )
        return f"Added to the policy file: {rule}"

    @contextlib.asynccontextmanager
    async def typing(self, address: Address | None) -> AsyncIterator[None]:
        """ "Typing…" shown in the chat while the block runs (a turn; a voice note transcribed
        or a file read before it)."""
        if address is None:
            yield
            return

        async def keep_typing() -> None:
            while True:
                with contextlib.suppress(Exception):
                    await self.outbox.show_typing(address)
                await asyncio.sleep(TYPING_REFRESH_SECONDS)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _owners_private_chat(self, owner: User) -> tuple[Address, Chat] | None:
        channels = self.switchboard.channels
        chats = [c for c in channels if c != "console"] or channels
        return await private_address(self.stores, owner.id, chats)

    async def _tell_owner_budget_spent(self, request: TurnRequest) -> None:
        """Once a day, at the first job the spent budget skips: which job that was, and what
        the budget skipped in all the last day it ran out (R209: one fixed text a day, and the
        owner never learnt their briefing was skipped five days running)."""
        # the owner's to hear, in their chat: the first job skipped may be another person's
        owner = await self.stores.people.owner()
        where = await self._owners_private_chat(owner) if owner is not None else None
        day = self.runner.budget_day_start().date().isoformat()
        last = await self.stores.state.get("budget_notice_day")
        if where is None or not await self.stores.state.set_if_changed("budget_notice_day", day):
            return  # (nowhere to say it yet: the next skipped job tries again)
        assert owner is not None
        zone = ZoneInfo(owner.timezone or self.settings.timezone)
        notices = BudgetNotices(self.stores, self.settings.timezone)
        what = await notices.skipped_job(request, owner, zone)
        await self.stores.audit.record(
            "budget.paused", actor="steward", subject=request.kind, day=day, skipped=what
        )
        text = (
            f"Today's token budget ({self.settings.daily_token_budget:,} tokens, "
            f"STEWARD_DAILY_TOKEN_BUDGET) is spent, so I skipped {what} and have paused "
            "self-initiated work (briefings, check-ins, tasks) until tomorrow. A one-time task "
            "you scheduled waits and runs tomorrow at its time (a repeating one at its next "
            "time). Messages from you still get answers. /usage lists what is skipped today."
        )
        if last is not None and (recap := await notices.recap(last, zone)):
            text += f"\n\n{recap}"
        address, chat = where
        await self.courier.send(address, chat.id, text, label=TRUSTED)


def _address_of(approval: Approval) -> Address | None:
    """Where the turn an approval paused was asked (its card's chat and thread)."""
    if approval.channel is None:
        return None
    return Address(approval.channel, approval.platform_chat_id or "", approval.thread_id)


def _decider(approval: Approval, identity: Identity, *, owner: bool) -> str:
    """Who decided, as the card's chat may read it (R262: "telegram:987654321" on a Slack
    channel's card): the owner as such, an approver by their id on the card's platform only."""
    if owner:
        return "the owner"
    return str(identity) if identity.channel == approval.channel else "an approver"


def _on_card(approval: Approval, alias: dict[str, Any]) -> bool:
    """R230: whether the card named what the call reached by `alias` (the target a link led
    to, as its first line put it: "… (a link: the file read is private/shopping.md)"). The
    rule "always" writes is for what the owner saw, never for where the link leads later."""
    heading = approval.preview.split("\n", 1)[0]
    return all(
        re.search(
            rf" {re.escape(str(approval.arguments.get(key)))} \(a link: the [a-z]+ [a-z]+ is "
            rf"{re.escape(str(value))}\)\Z",
            heading,
        )
        is not None
        for key, value in alias.items()
        if approval.arguments.get(key) != value
    )  # the whole end of the line, after the call's own path (R234: a path of its own holding
    # " private/diary.md)" had the diary count as shown)


def _own_words(result: str | None) -> str:
    """A stored result's text inside the fence it was stored in, if any (R234: a fetch refused
    at a redirect is stored fenced as the page's source, so it did not start "refused")."""
    text = result or ""
    if text.startswith("<untrusted id="):
        text = text.partition("\n")[2]
    return text


def _reached(arguments: dict[str, Any], alias: dict[str, Any]) -> str:
    """The names in `alias` that differ from the call's own (`path=private/diary.md`)."""
    return ", ".join(f"{k}={v}" for k, v in alias.items() if arguments.get(k) != v)
