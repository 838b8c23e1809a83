"""After a crash: what was cut short is marked, and each person whose message went unanswered
is told once the channels are up."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from agent.approvals import ACTION_FORMAT, ACTION_FORMAT_KEY, RESUME_WITHIN
from agent.core import Steward
from agent.types import Address, CommandCall
from memory.approvals import Approval, ApprovalStatus
from memory.backup import RESTORED_PENDING
from memory.labels import TRUSTED, Label
from memory.messages import InStatus
from memory.turns import TurnStatus

__all__ = [
    "RESUME_WITHIN",
    "RestartNote",
    "recover_interrupted",
    "resume_decided",
    "send_restart_notes",
    "show_unshown_cards",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartNote:
    """ "I was restarted before I could finish answering …", for one message a crash cut short."""

    address: Address
    chat_id: int
    text: str
    label: Label


async def recover_interrupted(steward: Steward) -> list[RestartNote]:
    """Mark what a crash cut short; returns the notes to send once channels are up."""
    stores = steward.stores
    notes: list[RestartNote] = []
    if await stores.state.get(RESTORED_PENDING) == "1":  # set by `steward restore`
        withdrawn = await stores.approvals.withdraw_restored()
        notes += await _withdrawn_turns(
            steward,
            withdrawn,
            "I was restored from a backup taken while {tool} (request {id}) waited for "
            "approval: it was withdrawn and did not run, since it may have run after that "
            "backup. Ask for it again if it still matters.",
        )
        await stores.state.set(RESTORED_PENDING, "0")
    if await stores.state.get(ACTION_FORMAT_KEY) != ACTION_FORMAT:  # an upgrade (R207)
        notes += await _withdrawn_turns(
            steward,
            await stores.approvals.withdraw_upgraded(),
            "I was upgraded while {tool} (request {id}) waited for approval, and I check an "
            "action differently now: it was withdrawn and did not run. Ask for it again if it "
            "still matters.",
        )
        await stores.state.set(ACTION_FORMAT_KEY, ACTION_FORMAT)
    reported: set[str] = set()  # requests whose fate a note tells already
    for approval in await stores.approvals.fail_interrupted():
        reported.add(approval.id.lower())
        await stores.audit.record(
            "approval.interrupted", actor="steward", subject=approval.id, tool=approval.tool
        )
        # its turn waited on this action and would wait for ever: it ends here, and whoever
        # approved it hears that the action may have run, so they check before asking again
        label = await stores.turns.label_of(approval.turn_id)
        await stores.turns.end_paused(approval.turn_id, TurnStatus.INTERRUPTED, label=label)
        note = _note_in_its_chat(
            approval,
            f"I was restarted while {approval.tool} ran (request {approval.id}, approved): "
            "it may have run, partly or fully. Check before asking for it again."
            if approval.status is ApprovalStatus.EXECUTING
            else f"I was restarted before {approval.tool} (request {approval.id}, "
            "approved) could start: it did not run. Ask for it again if it still matters.",
        )
        notes += [note] if note is not None else []
    for turn in await stores.turns.interrupt_running():
        await stores.audit.record(
            "turn.interrupted", actor="steward", subject=f"turn:{turn.id}", kind=turn.kind
        )
        for approval in await stores.approvals.withdraw_unshown(turn.id):
            notes += await _withdrawn(
                steward,
                approval,
                f"I was restarted before I could show the card for {approval.tool} (request "
                f"{approval.id}): it was withdrawn and did not run. Ask for it again if it "
                "still matters.",
            )
        notes += await _decided_unreported(steward, turn.id, reported)
    for message in await stores.messages.unanswered():
        if await stores.messages.reply_stored(message.id):
            # stopped after its turn's reply was stored (waiting out a channel's flood
            # control; its memory upkeep): answered, the reply redelivered if it was not out
            await stores.messages.set_status(message.id, InStatus.HANDLED)
            continue
        decided = _DECISION.match(message.text.strip())
        if decided is not None and decided[1].lower() in reported:
            # the /approve that ran it: the note on the request says what came of it (R147:
            # this one said "send it again", and sent again it said "already failed")
            await stores.messages.set_status(message.id, InStatus.HANDLED)
            continue
        await stores.messages.set_status(message.id, InStatus.INTERRUPTED)
        chat = await stores.people.chat_by_id(message.chat_id)
        if chat is None:
            continue
        if message.user_id is not None and not await stores.people.may_talk(message.user_id):
            continue  # revoked since: no word to them, not even this
        quoted = message.text if len(message.text) <= 80 else message.text[:77] + "..."
        # a turn that asked for a tool may have acted (a disk that filled mid-turn said so at
        # the time, R116: this note then asked for it again, as if nothing had been done)
        turn = await stores.turns.of_message(message.id)
        begun = turn is not None and await stores.audit.tools_asked_in(turn.id)
        # a command has no turn, and may have done what it says before its answer went out
        # (R169: "/remind …" sent again, as asked, made a second reminder)
        begun = begun or (turn is None and CommandCall.parse(message.text) is not None)
        notes.append(
            RestartNote(
                Address(chat.channel, chat.platform_chat_id, message.thread_id),
                chat.id,
                f"I was restarted before I could finish answering “{quoted}”. "
                + (
                    "I may have acted on it already, so check what was done before sending "
                    "it again."
                    if begun
                    else "Please send it again if it still matters."
                ),
                message.label,
            )
        )
    return notes


_DECISION = re.compile(r"/(?:approve|deny)(?:@\w+)?\s+([A-Za-z0-9]+)\s*$", re.IGNORECASE)


async def _withdrawn_turns(
    steward: Steward, withdrawn: list[Approval], text: str
) -> list[RestartNote]:
    """Requests withdrawn at the start before anyone could decide them: each one's turn ends
    (skipped), and its chat is told (`text`, with the request's `{tool}` and `{id}`)."""
    notes = []
    for approval in withdrawn:
        label = await steward.stores.turns.label_of(approval.turn_id)
        await steward.stores.turns.end_paused(approval.turn_id, TurnStatus.SKIPPED, label=label)
        notes += await _withdrawn(
            steward, approval, text.format(tool=approval.tool, id=approval.id)
        )
    return notes


async def _withdrawn(steward: Steward, approval: Approval, text: str) -> list[RestartNote]:
    """A request withdrawn at the start: audited, and its chat told (`text`)."""
    await steward.stores.audit.record("approval.withdrawn", actor="steward", subject=approval.id)
    note = _note_in_its_chat(approval, text)
    return [note] if note is not None else []


def _note_in_its_chat(approval: Approval, text: str) -> RestartNote | None:
    """A note of Steward's own to the chat a request was asked in (None: it has none)."""
    if approval.channel is None or approval.chat_id is None:
        return None
    address = Address(approval.channel, approval.platform_chat_id or "", approval.thread_id)
    return RestartNote(address, approval.chat_id, text, TRUSTED)


async def _decided_unreported(
    steward: Steward, turn_id: int, reported: set[str]
) -> list[RestartNote]:
    """A turn cut short while it went on after a decision: what came of each decided action,
    which its reply would have told (review 84: only "please send /approve … again" was said,
    and sent again it answered "already executed"). Each one told of joins `reported`, so the
    `/approve` that decided it gets no second note (R169: "send it again" as well)."""
    notes = []
    for approval in await steward.stores.approvals.for_turn(turn_id):
        status = approval.status
        if status in (ApprovalStatus.EXECUTED, ApprovalStatus.FAILED):
            came = "it ran" + (" and failed" if status is ApprovalStatus.FAILED else "")
        elif status in (ApprovalStatus.DENIED, ApprovalStatus.EXPIRED):
            came = "it did not run"
        else:
            continue
        note = _note_in_its_chat(
            approval,
            f"I was restarted while finishing after request {approval.id} "
            f"({approval.tool}, {status.value}): {came}, but I could not tell you the rest.",
        )
        notes += [note] if note is not None else []
        reported.add(approval.id.lower())
    return notes


async def resume_decided(steward: Steward) -> int:
    """Turns paused on approvals that were all decided, but not resumed (review 84: stopped
    between the decision and the resumption, the turn waited for ever, and its memories could
    not be forgotten while it did): they go on now, with the channels up. A withdrawn request's
    turn is never among them (its turn was ended with it: review 85). How many."""
    stores = steward.stores
    resumed = 0
    for turn_id in await stores.turns.paused():
        approvals = await stores.approvals.for_turn(turn_id)
        if not approvals or not all(a.decided for a in approvals):
            continue
        # a decision comes before its request expires: a day past the latest expiry is a day
        # past every decision (review 87: measured from the request, a decision a minute old
        # on a request of STEWARD_APPROVAL_MINUTES=2880 was closed)
        if steward.clock.now() - max(a.expires_at for a in approvals) > RESUME_WITHIN:
            label = await stores.turns.label_of(turn_id)
            await stores.turns.end_paused(turn_id, TurnStatus.INTERRUPTED, label=label)
            await stores.audit.record(
                "turn.interrupted", actor="steward", subject=f"turn:{turn_id}"
            )
            continue
        try:
            await steward.resume(turn_id)
        except Exception:  # one turn's failure does not keep the others paused
            log.exception("turn %d could not be resumed after the restart", turn_id)
            continue
        resumed += 1
    return resumed


async def show_unshown_cards(steward: Steward) -> int:
    """Cards of requests still pending whose card was never shown (a stop between the turn's
    pause and the card's send: R149, the request waited unseen and the same one asked again
    was merged into it): shown now, with the channels up. How many."""
    shown = 0
    stores = steward.stores
    prompted = {  # a card sent (a channel may give it no id): pending requests are recent
        str(event.detail.get("approval"))
        for event in await stores.audit.recent(2000, kind="approval.prompted")
    }
    now = steward.clock.now()
    for approval in await stores.approvals.pending():
        if approval.prompt_message_id is not None or approval.id in prompted:
            continue
        if approval.expires_at <= now:  # lapsed while Steward was down: the sweep ends it
            continue
        if await stores.turns.status_of(approval.turn_id) != TurnStatus.AWAITING_APPROVAL:
            continue
        try:
            await steward.show_card(approval)
        except Exception:  # one card's failure does not keep the others unshown
            log.exception(
                "the card of request %s could not be shown after the restart", approval.id
            )
            continue
        shown += 1
    return shown


async def send_restart_notes(steward: Steward, notes: list[RestartNote]) -> None:
    """The notes quote what was said (another person's words, a command with an approval id):
    they keep the quoted message's label and stay out of the history the model reads."""
    for note in notes:
        await steward.courier.send(
            note.address, note.chat_id, note.text, label=note.label, in_history=False
        )
