"""Sending through the account's SMTP server with aiosmtplib.

`smtps://` is TLS from the first byte; `smtp://` requires STARTTLS, except on a loopback host,
where it is used when offered. The envelope lists every recipient (Bcc too); the headers never
carry Bcc.
"""

from __future__ import annotations

import re
import ssl
from email.message import EmailMessage

import aiosmtplib

from agent.mail.account import MailAccount
from agent.mail.errors import MailError, MailLoginRefused, MailUnavailable

__all__ = ["send_mail"]

_STATUS = re.compile(r"^\d\.\d{1,3}\.\d{1,3}\b")

TIMEOUT = 60.0


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
    try:
        refused, _ = await aiosmtplib.send(
            message,
            sender=account.from_address,
            recipients=recipients,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=account.password.get_secret_value(),
            use_tls=server.implicit_tls,
            start_tls=start_tls,
            tls_context=ssl.create_default_context(),
            timeout=TIMEOUT,
        )
    except aiosmtplib.SMTPAuthenticationError:
        raise MailLoginRefused(f"{server.host} refused the login for {server.username}") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(r.recipient for r in exc.recipients)
        raise MailError(f"{server.host} refused the recipients {refused}") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailError(f"{server.host} refused the message: {exc.code} {exc.message}") from None
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise MailUnavailable(f"could not reach {server.host}:{server.port}: {exc}") from None
    # R113: some refused and others taken is no exception: they came back here, unread
    return {
        address: " ".join([str(answer.code), *_STATUS.findall(answer.message.strip())])
        for address, answer in refused.items()
    }
