"""Sending through the account's SMTP server with aiosmtplib.

`smtps://` is TLS from the first byte; `smtp://` requires STARTTLS, except on a loopback host,
where it is used when offered. The envelope lists every recipient (Bcc too); the headers never
carry Bcc.

A failure before the message is handed over (no connection, the login or a recipient refused,
the connection lost before DATA) means nothing was sent. Once DATA began, a connection that
breaks, or a server that does not confirm in time, may have taken the message all the same:
`MailMaybeSent` says so, never "could not reach", which invited sending it twice (R198).
"""

from __future__ import annotations

import re
import ssl
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from agent.mail.account import MailAccount
from agent.mail.errors import MailError, MailLoginRefused, MailUnavailable

__all__ = ["DATA_TIMEOUT", "TIMEOUT", "MailMaybeSent", "send_mail"]

_STATUS = re.compile(r"^\d\.\d{1,3}\.\d{1,3}\b")

TIMEOUT = 60.0
"""Seconds for each answer before the message is handed over (connect, login, recipients)."""
DATA_TIMEOUT = 180.0
"""Seconds the server may take to confirm a message it was handed (a server may check it before
it answers). RFC 5321 (4.5.3.2.6) suggests 10 minutes, so that a client giving up sooner does not
send it twice; here giving up says the mail may have been sent and what to check (R198), and a
chat is not held for 10 minutes: 3, where Steward waited 60 s and called the mail not sent."""


class MailMaybeSent(MailError):
    """The connection broke, or the server did not confirm in time, after the message began to
    be handed over: the server may have taken it. `message_id` is the message's Message-ID."""

    def __init__(self, message: str, *, message_id: str) -> None:
        super().__init__(message, ours=True)
        self.message_id = message_id


class _Smtp(aiosmtplib.SMTP):
    """aiosmtplib's client, noting when the message began to be handed over (DATA), and waiting
    DATA_TIMEOUT for the server to confirm it."""

    handing_over = False

    async def data(self, message: str | bytes, /, **_: Any) -> Any:
        self.handing_over = self.protocol is not None  # else it fails before DATA is sent
        return await super().data(message, timeout=DATA_TIMEOUT)


async def send_mail(
    account: MailAccount, message: EmailMessage, recipients: list[str]
) -> dict[str, str]:
    """Send; the recipients the server refused while it took the others, each with its code
    ("550 5.1.1": the number and status only, never the server's free text)."""
    server = account.smtp
    if server is None:
        raise MailError(
            "no SMTP server is configured (EMAIL_SMTP_URL), so mail cannot be sent", ours=True
        )
    if server.implicit_tls:
        start_tls: bool | None = False
    else:
        start_tls = True if server.starttls_required else None
    client = _Smtp(
        hostname=server.host,
        port=server.port,
        username=server.username,
        password=account.password.get_secret_value(),
        use_tls=server.implicit_tls,
        start_tls=start_tls,
        tls_context=ssl.create_default_context(),
        timeout=TIMEOUT,
    )
    reached = False
    try:
        async with client:
            reached = True
            refused, _ = await client.send_message(
                message, sender=account.from_address, recipients=recipients
            )
    except aiosmtplib.SMTPAuthenticationError:
        raise MailLoginRefused(f"{server.host} refused the login for {server.username}") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        # every one refused: each with its code, as when some are taken (R113), none of the
        # server's free text; still fenced: an address can be a mail's own Reply-To (review 35)
        refused = ", ".join(f"{r.recipient} ({_answer(r.code, r.message)})" for r in exc.recipients)
        raise MailError(
            f"{server.host} refused every recipient: {refused}; nothing was sent"
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailError(f"{server.host} refused the message: {exc.code} {exc.message}") from None
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        if client.handing_over:
            raise _maybe_sent(server.host, exc, str(message["Message-ID"])) from None
        if reached:
            raise MailUnavailable(
                f"the connection to {server.host} broke before the message was handed over "
                f"({exc}); nothing was sent"
            ) from None
        raise MailUnavailable(
            f"could not reach {server.host}:{server.port}: {exc}; nothing was sent"
        ) from None
    # R113: some refused and others taken is no exception: they came back here, unread
    return {address: _answer(answer.code, answer.message) for address, answer in refused.items()}


def _answer(code: int, message: str) -> str:
    """An SMTP answer as "550 5.1.1": its number and status, never the server's words."""
    return " ".join([str(code), *_STATUS.findall(message.strip())])


def _maybe_sent(host: str, exc: Exception, message_id: str) -> MailMaybeSent:
    """What a send cut short after the message began to go is told: in Steward's own words
    (none of the server's), and what to check before sending it again."""
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        what = f"{host} did not confirm the message within {DATA_TIMEOUT / 60:g} minutes"
    else:
        what = f"the connection to {host} broke before it confirmed taking the message"
    return MailMaybeSent(
        f"{what}, so it may have been sent. Check the Sent folder, or check with the "
        f"recipients, before sending it again (its Message-ID is {message_id})",
        message_id=message_id,
    )
