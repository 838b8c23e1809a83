"""The IMAP session for `imaps://`: aioimaplib, asyncio end to end, TLS from the first byte.

aioimaplib hands back a FETCH response as lines, each literal (a message, its headers) as the
bytearray after the line that announced it; `_fetch_items` pairs them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from imapclient import imap_utf7

from agent.mail.account import ServerUrl
from agent.mail.errors import MailError, MailFolderRefused, MailLoginRefused, MailUnavailable
from agent.mail.header_cap import HEADER_FETCH
from agent.mail.imap import (
    AUTH_FAILED,
    NO_SAFE_MOVE,
    TIMEOUT,
    Folder,
    FolderState,
    HeaderItem,
    SearchQuery,
    quote,
    tls_context,
    uid_set,
)

__all__ = ["AioImapSession"]

# aioimaplib's DEBUG log scrubs the password only as typed, not as it is sent (quoted: a `"` or
# `\\` in it is escaped), and logs every message it fetches: never pass its DEBUG records on
logging.getLogger("aioimaplib.aioimaplib").addFilter(lambda record: record.levelno > logging.DEBUG)


_ITEM = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')


def _internaldate(value: bytes | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.decode(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def _fetch_items(lines: Sequence[Any]) -> list[tuple[bytes, bytes]]:
    """aioimaplib's FETCH lines as (item line, literal) pairs: a literal follows its line."""
    items: list[tuple[bytes, bytes]] = []
    current: bytes | None = None
    literal = b""
    for line in lines:
        if isinstance(line, bytearray):
            literal = bytes(line)
            continue
        if isinstance(line, bytes) and _ITEM.match(line):
            if current is not None:
                items.append((current, literal))
            current, literal = line, b""
        elif isinstance(line, bytes) and current is not None and line.strip() != b")":
            current += b" " + line
    if current is not None:
        items.append((current, literal))
    return items


class AioImapSession:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.capabilities: frozenset[str] = frozenset()

    @classmethod
    async def connect(cls, server: ServerUrl, password: str) -> AioImapSession:
        import aioimaplib

        client = aioimaplib.IMAP4_SSL(
            host=server.host, port=server.port, timeout=TIMEOUT, ssl_context=tls_context()
        )
        try:
            await client.wait_hello_from_server()
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            raise MailUnavailable(f"could not reach {server.host}:{server.port}: {exc}") from None
        session = cls(client)
        response = await client.login(server.username, password)
        if response.result != "OK":
            text = b" ".join(bytes(x) for x in response.lines).decode(errors="replace")
            await session.logout()
            if response.result == "NO" or AUTH_FAILED.search(text):
                raise MailLoginRefused(f"{server.host} refused the login for {server.username}")
            raise MailUnavailable(f"{server.host} did not log in: {text[:200]}")
        protocol = client.protocol
        session.capabilities = frozenset(c.upper() for c in getattr(protocol, "capabilities", ()))
        return session

    async def _ok(self, response: Any, what: str) -> Any:
        if response.result != "OK":
            text = b" ".join(bytes(x) for x in response.lines if isinstance(x, bytes | bytearray))
            raise MailError(f"{what} failed: {text.decode(errors='replace')[:200]}")
        return response

    async def select(self, folder: str, *, readonly: bool = True) -> FolderState:
        # aioimaplib tracks SELECTED only after SELECT (not EXAMINE); reading uses BODY.PEEK,
        # so selecting read-write marks nothing as read
        response = await self._client.select(_mailbox(folder))
        if response.result == "NO":  # the server's considered answer, not a broken connection
            raise MailFolderRefused(f"the server would not open {folder}")
        response = await self._ok(response, f"opening {folder}")
        text = b"\n".join(bytes(x) for x in response.lines if isinstance(x, bytes | bytearray))
        validity = re.search(rb"UIDVALIDITY (\d+)", text)
        nxt = re.search(rb"UIDNEXT (\d+)", text)
        exists = re.search(rb"(\d+) EXISTS", text)
        return FolderState(
            folder,
            int(validity[1]) if validity else 0,
            int(nxt[1]) if nxt else 0,
            int(exists[1]) if exists else 0,
        )

    async def search(self, query: SearchQuery) -> list[int]:
        response = await self._ok(await self._client.uid_search(*query.text()), "search")
        found: list[int] = []
        for line in response.lines[:-1]:  # the last line is the server's "completed" text
            if isinstance(line, bytes):
                found += [int(x) for x in line.split() if x.isdigit()]
        return sorted(u for u in set(found) if u > query.uid_above)

    async def headers(self, uids: Sequence[int], *, header: bool = True) -> list[HeaderItem]:
        if not uids:
            return []
        block = f" {HEADER_FETCH}" if header else ""
        response = await self._ok(
            await self._client.uid(
                "fetch", uid_set(uids), f"(UID FLAGS RFC822.SIZE INTERNALDATE{block})"
            ),
            "fetch",
        )
        items = []
        for line, literal in _fetch_items(response.lines):
            uid = _UID.search(line)
            if uid is None:
                continue
            flags = _FLAGS.search(line)
            size = _SIZE.search(line)
            when = _DATE.search(line)
            items.append(
                HeaderItem(
                    int(uid[1]),
                    frozenset(f.decode() for f in flags[1].split()) if flags else frozenset(),
                    int(size[1]) if size else 0,
                    _internaldate(when[1] if when else None),
                    literal,
                )
            )
        return items

    async def message(self, uid: int) -> bytes | None:
        response = await self._ok(
            await self._client.uid("fetch", str(int(uid)), "(UID BODY.PEEK[])"), "fetch"
        )
        for line, literal in _fetch_items(response.lines):
            found = _UID.search(line)
            if found and int(found[1]) == uid:
                return literal
        return None

    async def move(self, uids: Sequence[int], folder: str) -> None:
        if "MOVE" in self.capabilities:
            await self._ok(await self._client.uid("move", uid_set(uids), _mailbox(folder)), "move")
            return
        if "UIDPLUS" not in self.capabilities:
            raise MailError(NO_SAFE_MOVE, ours=True)
        await self._ok(await self._client.uid("copy", uid_set(uids), _mailbox(folder)), "copy")
        await self.set_flags(uids, ["\\Deleted"], add=True)
        # these messages only: a plain EXPUNGE also purged any the owner had marked deleted
        await self._ok(await self._client.uid("expunge", uid_set(uids)), "expunge")

    async def set_flags(self, uids: Sequence[int], flags: Sequence[str], *, add: bool) -> None:
        what = "+FLAGS.SILENT" if add else "-FLAGS.SILENT"
        await self._ok(
            await self._client.uid("store", uid_set(uids), what, f"({' '.join(flags)})"),
            "store",
        )

    async def folders(self) -> list[Folder]:
        response = await self._ok(await self._client.list('""', "*"), "list")
        found = []
        for line in response.lines:
            if isinstance(line, bytes):
                match = re.search(rb'^\(([^)]*)\) (?:"[^"]*"|NIL) "?(.*?)"?$', line)
                if match and b"LIST completed" not in line:
                    flags = frozenset(match[1].decode(errors="replace").split())
                    found.append(Folder(_folder_name(match[2]), flags))
        return found

    async def idle(self, seconds: float) -> bool:
        if "IDLE" not in self.capabilities:
            await asyncio.sleep(seconds)
            return False
        idle = await self._client.idle_start(timeout=seconds)
        try:
            pushed = await self._client.wait_server_push(timeout=seconds)
        except TimeoutError:
            pushed = []
        finally:
            self._client.idle_done()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(idle, 5)
        if isinstance(pushed, str):  # aioimaplib says "STOP_WAIT_SERVER_PUSH" on its timeout
            return False
        return any(b"EXISTS" in bytes(x) for x in pushed if isinstance(x, bytes | bytearray))

    def interrupt(self) -> None:
        """Nothing to do: cancelling the task ends an asyncio IDLE at once."""

    async def logout(self) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            await asyncio.wait_for(self._client.logout(), 5)


def _mailbox(folder: str) -> str:
    """A folder's name as IMAP writes it: modified UTF-7 (RFC 3501 5.1.3), quoted; aioimaplib
    sends what it is given (R133: over imaps "R&D" and "Ärzte" could not be opened)."""
    return quote(imap_utf7.encode(folder).decode("ascii"))


def _folder_name(wire: bytes) -> str:
    """A name as LIST gives it, in modified UTF-7, as the person reads it."""
    try:
        return str(imap_utf7.decode(wire))
    except (UnicodeError, ValueError):
        return wire.decode(errors="replace")
