"""Building the mail parts from the settings, for the composition root."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.delivery import Courier, private_address
from agent.mail.account import (
    MailAccount,
    parse_from,
    parse_imap_url,
    parse_smtp_url,
)
from agent.outbox import Switchboard
from memory.clock import Clock
from memory.labels import TRUSTED
from memory.stores import Stores

if TYPE_CHECKING:  # the mail modules are imported when a mailbox is configured
    from agent.config import Settings
    from agent.mail.service import OwnerNote
    from agent.mail.watch import MailWatcher
    from agent.scheduler import SchedulerService

__all__ = ["account_from", "build_mail", "mail_configured", "owner_note"]

log = logging.getLogger(__name__)


def mail_configured(settings: Settings) -> bool:
    return bool(settings.email_imap_url or settings.email_smtp_url)


def account_from(settings: Settings) -> MailAccount | None:
    if not mail_configured(settings) or settings.email_password is None:
        return None
    name, address = parse_from(settings.email_from or "")
    return MailAccount(
        imap=parse_imap_url(settings.email_imap_url) if settings.email_imap_url else None,
        smtp=parse_smtp_url(settings.email_smtp_url) if settings.email_smtp_url else None,
        password=settings.email_password,
        from_name=name,
        from_address=address,
        folders=tuple(settings.email_folders),
        poll_seconds=settings.email_poll_seconds,
    )


def owner_note(stores: Stores, courier: Courier) -> OwnerNote:
    """A plain message from Steward to the owner's private chat, kept out of the history."""

    async def tell(text: str) -> None:
        owner = await stores.people.owner()
        outbox = courier.outbox
        channels = outbox.channels if isinstance(outbox, Switchboard) else []
        found = await private_address(stores, owner.id, list(channels)) if owner else None
        if found is None:
            log.warning("mail: could not reach the owner to say: %s", text)
            return
        address, chat = found
        await courier.send(address, chat.id, text, in_history=False, label=TRUSTED)

    return tell


def build_mail(
    settings: Settings,
    stores: Stores,
    clock: Clock,
    courier: Courier,
    scheduler: SchedulerService,
) -> MailWatcher | None:
    """The mail service and its watcher, with the scheduler's notice job and the briefing's
    inbox source attached; None when no mailbox is configured."""
    account = account_from(settings)
    if account is None:
        return None
    from agent.mail.briefing import MailDigest
    from agent.mail.service import MailService
    from agent.mail.watch import MailNoticeJob, MailWatcher

    service = MailService(account, stores, clock, tell_owner=owner_note(stores, courier))
    watcher = MailWatcher(service, scheduler)
    scheduler.engine.handlers["mail"] = MailNoticeJob(scheduler.runtime)
    scheduler.briefings.mail = MailDigest(service, settings.timezone)
    return watcher
