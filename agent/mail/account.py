"""The mail account from the settings: server URLs, the sender, the watched folders.

`EMAIL_IMAP_URL` is `imaps://user@host[:993]` (TLS from the first byte) or `imap://user@host[:143]`
(STARTTLS, required); `EMAIL_SMTP_URL` is `smtps://user@host[:465]` or `smtp://user@host[:587]`
(STARTTLS, required). The user name is percent-encoded (`me%40example.org`). On a loopback host
(a local bridge such as Proton Mail Bridge, or the tests) STARTTLS is used when the server
offers it and plain text accepted when it does not: nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import formataddr, parseaddr
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from agent.secret_shapes import shown_url

__all__ = [
    "MailAccount",
    "ServerUrl",
    "parse_folders",
    "parse_from",
    "parse_imap_url",
    "parse_smtp_url",
]

_IMAP = {"imaps": (993, True), "imap": (143, False)}
_SMTP = {"smtps": (465, True), "smtp": (587, False)}


@dataclass(frozen=True)
class ServerUrl:
    scheme: str
    host: str
    port: int
    username: str
    implicit_tls: bool

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def starttls_required(self) -> bool:
        """STARTTLS must succeed (a plain-text session is refused) unless the host is local."""
        return not self.implicit_tls and not self.loopback

    def __str__(self) -> str:  # never a password: the URL carries none
        return f"{self.scheme}://{self.username}@{self.host}:{self.port}"


def _parse(written: str, schemes: dict[str, tuple[int, bool]], example: str) -> ServerUrl:
    value = shown_url(written) or "the value"  # for the messages; `written` is what is parsed
    try:
        parts = urlsplit(written.strip())
    except ValueError:
        raise ValueError(f"{value} is not a URL; e.g. {example}") from None
    try:  # its message would echo the port, which without an @ is the password
        port = parts.port
    except ValueError:
        raise ValueError(f"{value}: the port is not a number up to 65535; e.g. {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        names = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{value} must start with {names}; e.g. {example}")
    if not parts.hostname:
        raise ValueError(f"{value} has no server name; e.g. {example}")
    if not parts.username:
        raise ValueError(f"{value} has no user name (write @ in it as %40); e.g. {example}")
    if parts.password is not None:
        raise ValueError("put the password in EMAIL_PASSWORD, not in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value} has a path or query; e.g. {example}")
    default_port, implicit = schemes[scheme]
    return ServerUrl(
        scheme, parts.hostname, port or default_port, unquote(parts.username), implicit
    )


def parse_imap_url(value: str) -> ServerUrl:
    return _parse(value, _IMAP, "imaps://me%40example.org@imap.example.org:993")


def parse_smtp_url(value: str) -> ServerUrl:
    return _parse(value, _SMTP, "smtps://me%40example.org@smtp.example.org:465")


def parse_from(value: str) -> tuple[str, str]:
    """`Me <me@example.org>` or `me@example.org` as (display name, address)."""
    name, address = parseaddr(value.strip())
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError, TypeError):
        parsed = None
    if parsed is None or not parsed.username or "." not in parsed.domain:
        raise ValueError("the value is not an e-mail address; e.g. Me <me@example.org>")
    return name, address


def parse_folders(value: str) -> tuple[str, ...]:
    folders = tuple(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    if not folders:
        raise ValueError("name at least one folder, e.g. INBOX")
    for number, folder in enumerate(folders, 1):
        if any(ord(c) < 32 or c in '"\\' for c in folder):
            raise ValueError(
                f"folder {number} of the list has a quote, a backslash or a control character"
            )
    return folders


@dataclass(frozen=True)
class MailAccount:
    """One mailbox Steward reads and sends from. The password stays a SecretStr until the one
    call that logs in."""

    imap: ServerUrl | None
    smtp: ServerUrl | None
    password: SecretStr
    from_name: str
    from_address: str
    folders: tuple[str, ...] = ("INBOX",)
    poll_seconds: float = 120.0
    max_bytes: int = 40_000_000

    @property
    def sender(self) -> str:
        return formataddr((self.from_name, self.from_address))

    @property
    def own_addresses(self) -> frozenset[str]:
        """The owner's own addresses: the sender, and the login names that are addresses."""
        found = {self.from_address.lower()}
        for server in (self.imap, self.smtp):
            if server is not None and "@" in server.username:
                found.add(server.username.lower())
        return frozenset(found)
