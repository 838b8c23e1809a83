"""Who may talk to Steward: /allow, /revoke, /link, the allowlists, and the owner's stranger note.

- `/allow telegram:<id>` and `/revoke telegram:<id>` (owner only) change the identities table;
  on Slack a mention works too (`/allow @ann`, which reaches us as `@ann (slack:U…)`, see
  `slack_to_plain`);
  revoking one of the owner's own linked identities unlinks it (a person of its own, not
  allowed); one listed in STEWARD_OWNER is unlinked when a start no longer finds it there.
- `TELEGRAM_ALLOWED_USERS` / `SLACK_ALLOWED_USERS` are admitted at start-up; an id taken out of
  a list is revoked at the next start (unless it belongs to the owner).
- The first time a stranger knocks, the owner gets one private note with the /allow command to
  paste.
- `/link` shows a one-time code; `/link <code>` from another account (typically the other
  channel) makes both accounts one person, so goals and memory follow them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING

from agent.cards import plain_name
from agent.config import Settings
from agent.delivery import Courier, private_address
from agent.types import Address, IncomingMessage
from bot.commands.privacy import in_group
from bot.commands.registry import CommandGroup, UsageError
from bot.owner import OWNER_STATE
from memory.labels import TRUSTED
from memory.links import LinkResult
from memory.people import ID_FORMS, Chat, Identity, User
from memory.stores import Stores
from memory.turns import TurnStatus

if TYPE_CHECKING:
    from agent.memory_service import MemoryService

__all__ = [
    "apply_allowlists",
    "apply_owner_settings",
    "group",
    "parse_identity",
    "tell_owner_about_stranger",
]

log = logging.getLogger(__name__)

group = CommandGroup()

ALLOWLIST_STATE = "access.allowlist"


_MENTION = re.compile(r"@[^()]*\((slack:[A-Za-z0-9]+)\)")
"""A Slack mention as `slack_to_plain` leaves it: `@ann (slack:U123)`."""
_SLACK_MEMBER = re.compile(r"@([UW][A-Z0-9]{2,20})")
"""A mention Slack sent without a name (`<@U123>` → `@U123`)."""
_NO_ID = (
    "Slack sent me only the name {name}, not who it is. Give their member id (their profile → "
    "⋮ → Copy member ID) as slack:<id>."
)


def parse_identity(text: str, channel: str = "") -> Identity:
    """`telegram:123` / `slack:U123` — or, on Slack, a mention of a member — as an Identity;
    UsageError says what is wrong."""
    text = text.strip()
    mention = _MENTION.fullmatch(text)
    if mention:
        text = mention[1]
    elif channel == "slack" and text.startswith("@"):
        member = _SLACK_MEMBER.fullmatch(text)
        if member is None:  # typed as a name, or a command that does not escape mentions
            raise UsageError(_NO_ID.format(name=text))
        text = f"slack:{member[1]}"
    if not text or " " in text:
        raise UsageError("Give one identity as channel:id.")
    try:
        identity = Identity.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if identity.channel not in ID_FORMS:
        raise UsageError(f"I know telegram and slack identities, not {identity.channel!r}.")
    try:
        return identity.checked()
    except ValueError as exc:
        raise UsageError(f"{exc}.") from None


allow = group.command(
    "allow",
    summary="let someone talk to me (owner only)",
    usage="/allow <channel:id>",
    example="/allow telegram:123456789",
    examples={"slack": "/allow slack:U0123ABCD"},
    owner_only=True,
    problem="Give one identity as channel:id.",
)
revoke = group.command(
    "revoke",
    summary="stop someone talking to me (owner only)",
    usage="/revoke <channel:id>",
    example="/revoke telegram:123456789",
    examples={"slack": "/revoke slack:U0123ABCD"},
    owner_only=True,
    problem="Give one identity as channel:id.",
)
link = group.command(
    "link",
    summary="make your Telegram and Slack accounts one person",
    usage="/link  (shows a code)  ·  /link <code>  (in your other account)",
    example="/link K3F9-PQ2X",
    problem="Send /link alone for a code, or /link followed by the code.",
)


@allow.sub("<who...>")
async def allow_identity(who: str, address: Address, sender: Identity, stores: Stores) -> str:
    identity = parse_identity(who, address.channel)
    people = stores.people
    if await people.resolve(identity) is not None:
        return f"{identity} may already talk to me."
    stranger = await people.stranger(identity)
    await people.admit(identity, stranger.display_name if stranger else "")
    await stores.audit.record("access.allowed", actor=str(sender), subject=str(identity))
    return f"{identity} may talk to me now. /revoke {identity} undoes it."


@revoke.sub("<who...>")
async def revoke_identity(
    who: str, address: Address, sender: Identity, stores: Stores, settings: Settings
) -> str:
    return await revoke_person(parse_identity(who, address.channel), sender, stores, settings)


async def revoke_person(
    identity: Identity, sender: Identity, stores: Stores, settings: Settings
) -> str:
    """What /revoke does for one identity, once it is read."""
    user = await stores.people.resolve(identity)
    if user is not None and user.is_owner:
        if identity in settings.owner:
            return (
                f"{identity} is listed in STEWARD_OWNER: take it out there and restart, and it "
                "is unlinked then."
            )
        return await _unlink(stores, identity, str(sender))
    if user is not None and len(await stores.people.identities_of(user.id)) > 1:
        # one of a person's linked accounts: it leaves them with its chats, and what waits or
        # is scheduled there stops (R123: revoked, it still got their reminders and the
        # answer to an approved request, while the person stayed allowed through the other)
        return await _unlink(stores, identity, str(sender), whose="their")
    if not await stores.people.revoke(identity):
        return f"{identity} was not allowed anyway."
    await stores.audit.record("access.revoked", actor=str(sender), subject=str(identity))
    stopped, withdrawn = await _stop_what_they_started(stores, user, str(sender))
    also = f" {stopped} reminder(s) and task(s) of theirs were cancelled." if stopped else ""
    if withdrawn:
        also += f" {withdrawn} request(s) of theirs awaiting approval were withdrawn."
    listed = (*settings.telegram_allowed_users, *settings.slack_allowed_users)
    if identity in listed:
        also += (
            f" They are listed in {identity.channel.upper()}_ALLOWED_USERS too: they stay "
            "revoked across restarts, and taking them out there tidies it up."
        )
    return f"{identity} can no longer talk to me.{also} /allow {identity} lets them back in."


async def _unlink(
    stores: Stores, identity: Identity, actor: str, whose: str = "the owner's"
) -> str:
    """One of a person's linked accounts (linked by mistake, lost) stops being theirs: the
    owner's stops being the owner."""
    note, _ = await _unlink_counted(stores, identity, actor, whose)
    return note


async def _unlink_counted(
    stores: Stores, identity: Identity, actor: str, whose: str = "the owner's"
) -> tuple[str, int]:
    """`_unlink`, and how many reminders and tasks it cancelled (R207: a start says so)."""
    detached = await stores.links.unlink(identity)
    if detached is None:
        return f"{identity} is the owner's only identity; it can't be unlinked.", 0
    # asked for in its chat: nothing of it runs, and no turn resumes to answer there
    for approval in await stores.approvals.withdraw_in_chats(detached.stopped_in, decided_by=actor):
        await stores.audit.record("approval.withdrawn", actor=actor, subject=approval.id)
        label = await stores.turns.label_of(approval.turn_id)
        await stores.turns.end_paused(approval.turn_id, TurnStatus.SKIPPED, label=label)
    await stores.audit.record(
        "identity.unlinked",
        actor=actor,
        subject=str(identity),
        chats=len(detached.chat_ids),
        schedules=detached.schedules_stopped,
        undelivered=detached.undelivered,
        chats_unknown=detached.chats_unknown,
    )
    stopped = detached.schedules_stopped
    also = (
        f" {stopped} reminder(s) and task(s) that went to its chat were cancelled."
        if stopped
        else ""
    )
    if detached.chats_unknown:
        also += (
            f" Which {identity.channel} direct chat was its cannot be told from {whose} other "
            f"{identity.channel} account's, so those chats stay in {whose} history, and what "
            f"was scheduled or waited for approval in any of them is stopped: set it again "
            f"from the other account, where what I send privately goes once it writes."
        )
    return (
        f"{identity} is no longer one of {whose} accounts: it is a person of its own now, "
        f"who can't talk to me.{also} /allow {identity} would let them in as someone else."
    ), stopped


async def apply_owner_settings(stores: Stores, configured: list[Identity]) -> User:
    """The owner, with the identities the settings list; one a previous start took from
    STEWARD_OWNER and no longer listed is unlinked, not kept as the owner for good."""
    owner = await stores.people.ensure_owner(configured)
    previous: list[str] = json.loads(await stores.state.get(OWNER_STATE) or "[]")
    current = [str(identity) for identity in configured]
    for gone in sorted(set(previous) - set(current)):
        identity = Identity.parse(gone)
        user = await stores.people.resolve(identity)
        if user is not None and user.is_owner:
            note, stopped = await _unlink_counted(stores, identity, "settings")
            # R207: reminders cancelled (the note says how many) were lost unsaid at INFO,
            # e.g. after a restore of another owner's backup
            level = logging.WARNING if stopped else logging.INFO
            log.log(level, "STEWARD_OWNER no longer lists %s: %s", gone, note)
    await stores.state.set(OWNER_STATE, json.dumps(current))
    return owner


async def _stop_what_they_started(stores: Stores, user: User | None, actor: str) -> tuple[int, int]:
    """A person with no allowed identity left: what they scheduled stops now, and what they
    asked for and is still awaiting approval is withdrawn (a later /allow, or a start that
    admits them again from the settings, brings back neither). Returns both counts."""
    if user is None or user.is_owner or await stores.people.identities_of(user.id):
        return 0, 0
    stopped = await stores.schedules.cancel_for_user(user.id)
    if stopped:
        await stores.audit.record(
            "schedule.cancelled", actor=actor, subject=f"user:{user.id}", count=stopped
        )
    chats = [chat.id for chat in await stores.people.private_chats(user.id)]
    if given_up := await stores.messages.give_up_in(chats):
        await stores.audit.record(
            "delivery.given_up", actor=actor, subject=f"user:{user.id}", count=given_up
        )
    withdrawn = await stores.approvals.withdraw_for_user(user.id, decided_by=actor)
    for approval in withdrawn:
        await stores.audit.record("approval.withdrawn", actor=actor, subject=approval.id)
        # its turn ends here: let back in later, they do not get it continued (review 85)
        label = await stores.turns.label_of(approval.turn_id)
        await stores.turns.end_paused(approval.turn_id, TurnStatus.SKIPPED, label=label)
    return stopped, len(withdrawn)


@link.sub("")
async def link_code(sender: Identity, user: User, chat: Chat, stores: Stores) -> str:
    if in_group(chat):  # whoever enters the code becomes this person: never show it to a group
        return "Send /link in our private chat: whoever enters the code becomes you."
    code = await stores.links.issue(user.id, sender)
    return (
        f"Your link code: {code.display}\n\n"
        f"Within 10 minutes, send /link {code.display} to me from your other account "
        "(Telegram or Slack). Both accounts then count as you: the same goals, memory and "
        "settings. The code works once; don't share it — whoever enters it becomes you."
    )


@link.sub("<code>")
async def link_redeem(
    code: str,
    sender: Identity,
    chat: Chat,
    stores: Stores,
    memory: MemoryService | None = None,
) -> str:
    if in_group(chat):  # everyone here read the code: whoever entered it would become you
        await stores.links.discard(code)
        return (
            "Link codes are entered in a private chat with me. That code was shown here, so it "
            "no longer works: send /link again in our private chat."
        )
    redemption = await stores.links.redeem(code, sender)
    if redemption.result is LinkResult.LINKED:
        await stores.audit.record(
            "identity.linked",
            actor=str(sender),
            subject=f"user:{redemption.user_id}",
            merged=f"user:{redemption.merged_user_id}",
        )
        if memory is not None:  # the merged memories' vectors are owed under this user now
            memory.store.vectors_owed()
        others = [str(i) for i in await stores.people.identities_of(redemption.user_id or 0)]
        return "Linked. These accounts are now one person to me: " + ", ".join(others) + "."
    return {
        LinkResult.UNKNOWN: "That code is unknown, used or expired. Send /link in your other "
        "account for a new one.",
        LinkResult.SAME_USER: "This account is already linked to that one.",
        LinkResult.OWNER_PROTECTED: "This is the owner's account: start /link here and enter "
        "the code in the other account instead.",
        LinkResult.NOT_ALLOWED: "This account may not talk to me.",
    }[redemption.result]


async def tell_owner_about_stranger(
    stores: Stores, courier: Courier, channels: list[str], message: IncomingMessage
) -> None:
    """One private note to the owner about a stranger's first message, with the command to paste.

    Sent to the owner's most recent private chat on a running channel (preferring the stranger's
    channel), else as a direct message to the owner's identity there.
    """
    owner = await stores.people.owner()
    if owner is None:
        return
    reach = [c for c in channels if c != "console"] or ["console"]
    found = await private_address(stores, owner.id, reach, prefer=message.address.channel)
    if found is None:
        log.info("a stranger (%s) wrote, but I have no private chat with the owner", message.sender)
        return
    address, chat = found
    who = str(message.sender)
    if message.sender_name:  # their own choice of name: plain text, never Markdown or a link
        who = f"{plain_name(message.sender_name) or 'someone'} ({message.sender})"
    where = "in a group" if message.chat_kind.value != "private" else "privately"
    text = (
        f"Someone new wrote to me {where} on {message.address.channel}: {who}. "
        "I told them I only talk to people you allow. To let them in, send:\n"
        f"/allow {message.sender}"
    )
    await courier.send(address, chat.id, text, in_history=False, label=TRUSTED)


async def apply_allowlists(stores: Stores, allowed: list[Identity]) -> None:
    """Admit the identities the settings allow; revoke ones a previous start admitted from the
    settings that are no longer listed. One the owner revoked in chat while it was listed stays
    revoked (a restart does not undo /revoke); /allow lets it back in."""
    previous: list[str] = json.loads(await stores.state.get(ALLOWLIST_STATE) or "[]")
    current = [str(identity) for identity in allowed]
    kept_out = await stores.people.revoked([i for i in allowed if str(i) in previous])
    for identity in sorted(kept_out, key=str):
        log.warning(
            "%s is in the settings' allowed users but was revoked in chat: it stays revoked "
            "(/allow %s lets it back in)",
            identity,
            identity,
        )
    # one trip each, however long the list (a start once took a dozen per listed identity)
    admitted = await stores.people.admit_many([i for i in allowed if i not in kept_out])
    await stores.audit.record_many(
        "access.allowed", actor="settings", subjects=[str(i) for i in admitted]
    )
    for gone in sorted(set(previous) - set(current)):
        user = await stores.people.resolve(Identity.parse(gone))
        if await stores.people.revoke(Identity.parse(gone)):
            await stores.audit.record("access.revoked", actor="settings", subject=gone)
            await _stop_what_they_started(stores, user, "settings")
    await stores.state.set(ALLOWLIST_STATE, json.dumps(current))
