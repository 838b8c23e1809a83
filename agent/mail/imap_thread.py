"""The IMAP session for `imap://`: imapclient in worker threads, which can STARTTLS (aioimaplib
cannot). STARTTLS is required unless the server is on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from agent.mail.account import ServerUrl
from agent.mail.errors import MailError, MailFolderRefused, MailLoginRefused, MailUnavailable
from agent.mail.header_cap import HEADER_FETCH
from agent.mail.imap import (
    NO_SAFE_MOVE,
    TIMEOUT,
    Folder,
    FolderState,
    HeaderItem,
    SearchQuery,
    tls_context,
)

__all__ = ["ThreadedImapSession"]

# imapclient logs every line it reads at DEBUG, a fetched message whole (R194: a watched mail
# no model saw was in the log), as aioimaplib does (imap_aio.py): never pass those records on
for _name in ("imapclient.imaplib", "imapclient.imapclient"):
    logging.getLogger(_name).addFilter(lambda record: record.levelno > logging.DEBUG)

T = TypeVar("T")
IDLE_SLICE = 2.0  # seconds a thread waits in IDLE before it looks whether it should stop


class ThreadedImapSession:
    """imapclient (blocking) in worker threads, one call at a time."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = asyncio.Lock()
        self._stop = threading.Event()
        self.capabilities: frozenset[str] = frozenset()

    @classmethod
    async def connect(cls, server: ServerUrl, password: str) -> ThreadedImapSession:
        import imapclient
        from imapclient.exceptions import LoginError

        def login() -> Any:
            client = imapclient.IMAPClient(
                server.host, port=server.port, ssl=False, timeout=TIMEOUT
            )
            try:
                if client.has_capability("STARTTLS"):
                    client.starttls(tls_context())
                elif server.starttls_required:
                    raise MailUnavailable(
                        f"{server.host} does not offer STARTTLS; use imaps:// instead"
                    )
                client.login(server.username, password)
            except BaseException:
                with contextlib.suppress(Exception):  # already closed
                    client.shutdown()
                raise
            return client

        try:
            client = await asyncio.to_thread(login)
        except LoginError:
            raise MailLoginRefused(
                f"{server.host} refused the login for {server.username}"
            ) from None
        except MailError:
            raise
        except (OSError, ssl.SSLError, imapclient.exceptions.IMAPClientError) as exc:
            raise MailUnavailable(f"could not reach {server.host}:{server.port}: {exc}") from None
        session = cls(client)
        session.capabilities = frozenset(
            (c.decode() if isinstance(c, bytes) else str(c)).upper()
            for c in await session._run(client.capabilities)
        )
        return session

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import imapclient

        async with self._lock:
            try:
                return await asyncio.to_thread(func, *args, **kwargs)
            except imapclient.exceptions.IMAPClientAbortError as exc:
                raise MailUnavailable(f"the connection broke: {str(exc)[:200]}") from None
            except imapclient.exceptions.IMAPClientError as exc:
                raise MailError(str(exc)[:200]) from None
            except OSError as exc:
                raise MailUnavailable(f"the connection broke: {exc}") from None

    async def select(self, folder: str, *, readonly: bool = True) -> FolderState:
        try:
            info = await self._run(self._client.select_folder, folder, readonly=readonly)
        except MailUnavailable:
            raise
        except MailError:  # a NO or BAD to SELECT: the server's answer about this folder
            raise MailFolderRefused(f"the server would not open {folder}") from None
        return FolderState(
            folder,
            int(info.get(b"UIDVALIDITY", 0)),
            int(info.get(b"UIDNEXT", 0)),
            int(info.get(b"EXISTS", 0)),
        )

    async def search(self, query: SearchQuery) -> list[int]:
        criteria = query.criteria()
        ascii_only = all(str(c).isascii() for c in criteria)
        found = await self._run(
            self._client.search, criteria, charset=None if ascii_only else "UTF-8"
        )
        return sorted(int(u) for u in found if int(u) > query.uid_above)

    async def headers(self, uids: Sequence[int], *, header: bool = True) -> list[HeaderItem]:
        if not uids:
            return []
        block = [HEADER_FETCH] if header else []
        data = await self._run(
            self._client.fetch, list(uids), ["FLAGS", "RFC822.SIZE", "INTERNALDATE", *block]
        )
        items = []
        for uid, values in sorted(data.items()):
            when = values.get(b"INTERNALDATE")
            if isinstance(when, datetime) and when.tzinfo is None:
                when = when.astimezone()
            items.append(
                HeaderItem(
                    int(uid),
                    frozenset(
                        f.decode() if isinstance(f, bytes) else str(f)
                        for f in values.get(b"FLAGS", ())
                    ),
                    int(values.get(b"RFC822.SIZE", 0)),
                    when if isinstance(when, datetime) else None,
                    _header(values),
                )
            )
        return items

    async def message(self, uid: int) -> bytes | None:
        data = await self._run(self._client.fetch, [uid], ["BODY.PEEK[]"])
        values = data.get(uid)
        return values.get(b"BODY[]") if values else None

    async def move(self, uids: Sequence[int], folder: str) -> None:
        if "MOVE" in self.capabilities:
            await self._run(self._client.move, list(uids), folder)
            return
        if "UIDPLUS" not in self.capabilities:
            raise MailError(NO_SAFE_MOVE, ours=True)
        await self._run(self._client.copy, list(uids), folder)
        await self._run(self._client.add_flags, list(uids), [b"\\Deleted"], True)
        # these messages only: a plain EXPUNGE also purged any the owner had marked deleted
        await self._run(self._client.uid_expunge, list(uids))

    async def set_flags(self, uids: Sequence[int], flags: Sequence[str], *, add: bool) -> None:
        call = self._client.add_flags if add else self._client.remove_flags
        await self._run(call, list(uids), [f.encode() for f in flags], True)

    async def folders(self) -> list[Folder]:
        listed = await self._run(self._client.list_folders)
        return [Folder(name, frozenset(_text(f) for f in flags)) for flags, _, name in listed]

    async def idle(self, seconds: float) -> bool:
        if "IDLE" not in self.capabilities:
            await asyncio.sleep(seconds)
            return False
        client = self._client

        def wait() -> bool:
            """In short slices, so `interrupt()` ends it soon (a thread cannot be cancelled)."""
            deadline = time.monotonic() + seconds
            client.idle()
            try:
                while not self._stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    responses = client.idle_check(timeout=min(left, IDLE_SLICE))
                    if any(len(r) > 1 and r[1] == b"EXISTS" for r in responses):
                        return True
                return False
            finally:
                client.idle_done()

        return await self._run(wait)

    def interrupt(self) -> None:
        """End a wait in IDLE within a slice (the watcher is stopping)."""
        self._stop.set()

    async def logout(self) -> None:
        with contextlib.suppress(Exception):  # already closed
            await self._run(self._client.logout)


def _header(values: dict[bytes, Any]) -> bytes:
    """The header block fetched: the server names a partial fetch by its origin
    (`BODY[HEADER]<0>`)."""
    for key, value in values.items():
        if key.startswith(b"BODY[HEADER]") and isinstance(value, bytes):
            return value
    return b""


def _text(flag: bytes | str) -> str:
    return flag.decode(errors="replace") if isinstance(flag, bytes) else flag
