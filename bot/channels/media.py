"""Downloading the files people send, through each platform's own file API, with a size cap.

- Telegram: `getFile`, then GET `{base}/file/bot<token>/<file_path>` (a local Bot API server
  with `--local` gives an absolute path on its disk instead). The Bot API serves files up to
  20 MiB (`TELEGRAM_FILE_LIMIT`); a larger one gets `400 file is too big`, said as Telegram's
  limit when `STEWARD_FILE_MAX_BYTES` is above it (R227: "I take files up to 50 MB" of a 30 MB
  file); only a local Bot API server lifts it.
- Slack: GET the file's `url_private_download` with `Authorization: Bearer <bot token>`; the
  token goes only to Slack's own file host over https (or exactly the configured API server,
  scheme, host and port, for a test server), and no redirect is followed with it.

A file whose announced size is over the cap is refused before any request; one that turns out
larger while streaming is cut off at the cap. Either way `FileTooLarge` is raised, and nothing
over the cap is held in memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

from agent.attachments import FileTooLarge, FileUnavailable, MediaKind, MediaRef
from agent.capped_decode import ACCEPT_ENCODING, BodyRefused, BodyTooLarge, read_capped
from bot.channels.telegram_api import TelegramApi, TelegramBadRequest, TelegramError
from bot.channels.telegram_types import File, MalformedUpdate

__all__ = [
    "SLACK_FILE_HOSTS",
    "TELEGRAM_FILE_LIMIT",
    "slack_fetch",
    "slack_files",
    "slack_host_allowed",
    "telegram_fetch",
    "unopened_files",
]

log = logging.getLogger(__name__)

SLACK_FILE_HOSTS = ("files.slack.com", "slack-files.com")
_HOST_NAME = re.compile(r"[a-z0-9.-]+")
_CHUNK = 64 * 1024
TELEGRAM_FILE_LIMIT = 20 << 20
"""The most api.telegram.org lets a bot download (telegram-bot-api: 20 MiB)."""


def _check_announced(ref: MediaRef, max_bytes: int) -> None:
    if ref.size is not None and ref.size > max_bytes:
        raise FileTooLarge(ref.size, max_bytes)


async def telegram_fetch(api: TelegramApi, ref: MediaRef, max_bytes: int) -> bytes:
    """The file `ref` names, through getFile; raises FileTooLarge / FileUnavailable."""
    _check_announced(ref, max_bytes)
    try:
        file = File.from_raw(await api.call("getFile", file_id=ref.file_id))
    except TelegramBadRequest as exc:
        if "too big" in str(exc).lower():
            if max_bytes < TELEGRAM_FILE_LIMIT:  # Steward's own cap is the lower
                raise FileTooLarge(ref.size, max_bytes) from None
            raise FileUnavailable(_too_big(api.local)) from None
        raise FileUnavailable("Telegram would not give me the file") from None
    except (TelegramError, MalformedUpdate) as exc:
        log.warning("Telegram getFile failed: %s", type(exc).__name__)
        raise FileUnavailable("I could not reach Telegram to download it") from None
    if file.file_size is not None and file.file_size > max_bytes:
        raise FileTooLarge(file.file_size, max_bytes)
    if not file.file_path:
        raise FileUnavailable("Telegram gave no download path for it")
    if api.local and Path(file.file_path).is_absolute():
        return await asyncio.to_thread(_read_local, Path(file.file_path), max_bytes)
    try:
        return await api.download(file.file_path, max_bytes, chunk=_CHUNK)
    except OverflowError:
        raise FileTooLarge(None, max_bytes) from None
    except TelegramError as exc:  # its text never holds the URL (the token is in it)
        log.warning("Telegram file download failed: %s", exc)
        raise FileUnavailable("the download from Telegram failed") from None


def _too_big(local: bool) -> str:
    """Why Telegram would not give a file over its own limit, above Steward's cap (R227)."""
    if local:
        return "it is larger than the local Bot API server gives a bot"
    return (
        "Telegram lets a bot download files of up to 20 MB, and only a local Bot API "
        "server lifts that"
    )


def _read_local(path: Path, max_bytes: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(None, max_bytes)
    return data


def _endpoint(url: str) -> tuple[str, str, int | None] | None:
    """Where httpx would connect for `url` (scheme, host, port), parsed by httpx itself so the
    check and the request read the URL alike; None for no URL or one with credentials in it."""
    import httpx  # imported on first use (Slack files): 50-70 ms at start-up (issue 19)

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if parsed.userinfo or not parsed.host:
        return None
    port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme)
    return parsed.scheme, parsed.host.lower(), port


def slack_host_allowed(url: str, api_url: str | None) -> bool:
    """Whether `url` is on a host the bot token may be sent to: Slack's file host over https
    on its own port, or exactly the configured API server (scheme, host and port)."""
    target = _endpoint(url)
    if target is None:
        return False
    if api_url and target == _endpoint(api_url):
        return True
    scheme, host, port = target
    return (
        scheme == "https"
        and port == 443
        and _HOST_NAME.fullmatch(host) is not None
        and any(host == h or host.endswith("." + h) for h in SLACK_FILE_HOSTS)
    )


async def slack_fetch(
    token: str, ref: MediaRef, max_bytes: int, *, api_url: str | None = None
) -> bytes:
    """The file at `ref.file_id` (its url_private_download), with the bot token."""
    _check_announced(ref, max_bytes)
    url = ref.file_id
    if not slack_host_allowed(url, api_url):
        raise FileUnavailable("its download link is not on Slack's file host")
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": ACCEPT_ENCODING}
    try:
        async with (
            httpx.AsyncClient(timeout=120, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise FileUnavailable(f"Slack answered HTTP {response.status_code} for it")
            announced = response.headers.get("content-length")
            if (
                announced
                and announced.isascii()
                and announced.isdigit()
                and int(announced) > max_bytes
            ):
                raise FileTooLarge(int(announced), max_bytes)
            if response.headers.get("content-type", "").startswith("text/html") and not (
                ref.mime_type.startswith("text/html")
            ):
                # Slack answers a missing files:read scope with its login page
                raise FileUnavailable("Slack sent a web page instead (is files:read granted?)")
            try:  # inflated under the cap if Slack compresses it (agent/capped_decode.py)
                data = await read_capped(
                    response.aiter_raw(_CHUNK), response.headers.get("content-encoding"), max_bytes
                )
            except BodyTooLarge:
                raise FileTooLarge(None, max_bytes) from None
            except BodyRefused as exc:
                raise FileUnavailable(f"the download from Slack was refused: {exc}") from None
    except (FileTooLarge, FileUnavailable):
        raise
    except httpx.HTTPError as exc:
        log.warning("Slack file download failed: %s", type(exc).__name__)
        raise FileUnavailable("the download from Slack failed") from None
    return data


def unopened_files(event: dict[str, Any]) -> list[str]:
    """The files shared with a message that have no link to fetch them by (a Slack Connect stub
    files.info did not fill in, a file a free plan hides): said, so the person hears Steward
    cannot open them (R140: a file-only message went unanswered, and a question about one was
    answered as if nothing came with it). Never by name: whoever made the file chose it, and
    this goes into the sender's own words (R171: a name, raw, was the owner's instruction)."""
    return [
        "a file"
        for item in event.get("files") or []
        if isinstance(item, dict)
        and not (item.get("url_private_download") or item.get("url_private"))
    ]


def slack_files(event: dict[str, Any], *, shared: bool = False) -> tuple[MediaRef, ...]:
    """The files shared with a message (`files[]`), fetched later from url_private_download;
    a Slack Connect stub without a URL is skipped. A clip recorded in Slack by the sender is a
    voice note (their words); someone else's clip they share is an audio file (outside), and so
    is every clip of a `shared` message (one forwarded: its `attachments[]` entry)."""
    found = []
    for item in event.get("files") or []:
        if not isinstance(item, dict):
            continue
        url = item.get("url_private_download") or item.get("url_private")
        if not url:
            continue
        mime = str(item.get("mimetype") or "")
        own = not shared and item.get("user") == event.get("user")
        if item.get("subtype") == "slack_audio" and own:
            kind = MediaKind.VOICE  # a clip the sender recorded; another's, shared, is audio
        elif mime.startswith("image/"):
            kind = MediaKind.PHOTO
        elif mime.startswith("audio/"):
            kind = MediaKind.AUDIO
        else:
            kind = MediaKind.DOCUMENT
        size = item.get("size")
        name = str(item.get("name") or item.get("title") or "")
        found.append(
            MediaRef("slack", kind, str(url), name, mime, size if isinstance(size, int) else None)
        )
    return tuple(found)
