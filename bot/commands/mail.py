"""/mail: watch rules for the mailbox (a short notice when matching mail arrives)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.config import Settings
from agent.delivery import private_address
from agent.mail.setup import account_from
from agent.types import Address, address_to_json
from bot.commands.ids import digits_of_id
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.people import Chat, User
from memory.stores import Stores

__all__ = ["group", "mail_state", "status_line"]

# agent.mail.service and agent.mail.watch (aiosmtplib, the IMAP clients) are imported by the
# handlers that use them: without a mailbox, start-up never loads them

group = CommandGroup()

USAGE = (
    "/mail watch from <address or domain> · /mail watch subject <words> · "
    "/mail watch unread older than a day · /mail watch list · /mail watch remove <id>"
)
RULE = (
    "Watch what? /mail watch from boss@corp.example · /mail watch from corp.example · "
    "/mail watch subject invoice · /mail watch unread older than a day"
)
WHICH = "Which rule? /mail watch remove <id> (the ids are in /mail watch list)."

mail = group.command(
    "mail",
    summary="e-mail: watch rules that notify you of new mail",
    usage=USAGE,
    example="/mail watch from boss@corp.example",
    owner_only=True,
    missing="Watch rules tell you when matching mail arrives.",
)


async def status_line(settings: Settings, stores: Stores) -> str | None:
    """The mailbox for /status: the account, what is watched, whether the login works."""
    account = account_from(settings)
    if account is None:
        return None
    from agent.mail.service import CONTACT, LOGIN_REFUSED
    from agent.mail.watch import FOLDER_REFUSED

    where = account.imap.host if account.imap else account.smtp.host if account.smtp else "?"
    rules = len(await stores.mail.rules())
    refused = await stores.state.get(LOGIN_REFUSED) == "1"
    contact = json.loads(await stores.state.get(CONTACT) or "{}")
    if refused:
        login = "refused (check EMAIL_PASSWORD)"
    elif not contact:
        login = "not tried yet"
    elif contact.get("problem"):
        zone = ZoneInfo(settings.timezone)
        since = datetime.fromisoformat(contact["since"]).astimezone(zone)
        login = f"not reached since {since:%Y-%m-%d %H:%M} ({zone.key}): {contact['problem']}"
    else:
        login = "ok"
    watched = "nothing (no EMAIL_IMAP_URL)"
    if account.imap:
        shut = [f for f in account.folders if await stores.state.get(FOLDER_REFUSED + f) == "1"]
        watched = ", ".join(
            f"{f} (the server would not open it)" if f in shut else f for f in account.folders
        )
    return (
        f"Mail: {account.from_address} on {where}; watching {watched}, {rules} rule(s); "
        f"login {login}"
    )


def mail_state(line: str) -> str:
    """The state a `status_line` says in a word: up, refused (the login), or unreachable."""
    if "login refused" in line:
        return "refused"
    return "unreachable" if "login not reached" in line else "up"


def _rule_id(text: str) -> int:
    return int(digits_of_id(text, WHICH))


def _configured(settings: Settings) -> None:
    if not settings.email_imap_url:
        raise UsageError("E-mail is not set up: set EMAIL_IMAP_URL and EMAIL_PASSWORD first.")


@mail.sub("watch list")
@mail.sub("watch")
async def watch_list(user: User, chat: Chat, stores: Stores) -> str:
    from agent.mail.rules import describe_rule

    if in_group(chat):
        return IN_PRIVATE
    rules = await stores.mail.rules(user.id)
    if not rules:
        return "No mail watch rules. Add one: /mail watch from boss@corp.example"
    return "Watching:\n" + "\n".join(f"#{r.id} {describe_rule(r)}" for r in rules)


@mail.sub("watch remove <rule_id...>", problem=WHICH, rule_id=_rule_id)
async def watch_remove(rule_id: int, user: User, chat: Chat, stores: Stores) -> str:
    from agent.mail.rules import describe_rule

    removed = await stores.mail.remove_rule(user.id, rule_id)
    if removed is None:
        return f"There is no watch rule #{rule_id}. See /mail watch list."
    await stores.audit.record("mail.watch_removed", actor=f"user:{user.id}", subject=str(rule_id))
    if in_group(chat):
        return f"Stopped watching #{rule_id}."
    return f"Stopped watching #{rule_id}: {describe_rule(removed)}."


@mail.sub("watch <rule...>", problem=RULE)
async def watch_add(
    rule: str, user: User, chat: Chat, address: Address, settings: Settings, stores: Stores
) -> str:
    _configured(settings)
    from agent.mail.rules import describe_rule, parse_rule

    try:
        spec = parse_rule(rule)
    except ValueError as exc:
        raise UsageError(f"{exc}.\n{RULE}") from None
    where, here = address, chat
    if in_group(chat):  # everyone here would read the notices: they go to the private chat
        private = await private_address(stores, user.id, [address.channel], address.channel)
        if private is None or private[1] is None:
            return IN_PRIVATE
        where, here = private
    saved, added = await stores.mail.add_rule(
        user.id,
        spec.kind,
        spec.value,
        chat_id=here.id,
        destination=address_to_json(where),
    )
    if added:
        await stores.audit.record(
            "mail.watch_added", actor=f"user:{user.id}", subject=str(saved.id), kind=spec.kind
        )
    if in_group(chat):
        said = "Watching" if added else "Already watching"
        return f"{said} #{saved.id}; I'll tell you in our private chat when such mail arrives."
    if not added:
        return f"Already watching #{saved.id}: {describe_rule(saved)}."
    return (
        f"Watching #{saved.id}: {describe_rule(saved)}. I'll tell you here when such mail "
        "arrives (not during quiet hours). Remove with /mail watch remove " + str(saved.id)
    )


@mail.sub("<verb> [ignored...]")
async def unknown(verb: str) -> str:
    raise UsageError(f"I don't know /mail {verb.lower()}.")
