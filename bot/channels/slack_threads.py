"""A Slack mention in a thread Steward does not follow: the thread's earlier messages.

Someone asks "@Steward what does this error mean?" under a colleague's message: the question
makes sense only with the thread. Its root and the last few replies before the mention are
fetched (`conversations.replies`, which `channels:history` / `groups:history` allow) and handed
to the core as typed `ThreadPost`s on a `ReplyRef`, like a Telegram reply's message: the core
labels each one (another person's words stay outside content, never a command). Whether
Steward already follows the thread is the core's to say (its log); a failure here (a missing
scope, a rate limit, Slack down, or no answer within the time the message may wait unstored)
costs the thread, never the message.

A message shared into another (Slack's "Forward message": an `attachments[]` entry with
`is_share`) is read here too (`shares_of`, `share_author`, `share_words`): someone else's words,
which the channel hands on as a forward, like Telegram's; Steward's own (a card, with its
approval id) is named, never shown (R257).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from agent.attachments import ReplyRef, ThreadPost
from bot.channels.formatting import slack_to_plain
from memory.people import Identity

__all__ = [
    "MAX_CHARS",
    "MAX_REPLIES",
    "OWN_SHARE",
    "app_of",
    "share_author",
    "share_words",
    "shares_of",
    "thread_before",
]

log = logging.getLogger(__name__)


def app_of(message: dict[str, Any]) -> str:
    """The app that made a post, "" for a person's own: also a post an integration made with a
    person's own account (an RSS or mail relay, a "send as me" step), which carries `app_id`
    or only a `bot_profile`, no `bot_id`; its words are the app's, not the person's (R185).
    R245: the thread reader looked at `bot_id` and `app_id` only, so such a post in the
    owner's name came into a thread's history "by the owner"."""
    profile = message.get("bot_profile")
    named = profile.get("app_id") or profile.get("id") if isinstance(profile, dict) else None
    return str(
        message.get("bot_id") or message.get("app_id") or named or ("app" if profile else "")
    )


MAX_REPLIES = 10
"""Replies brought in besides the root: the latest before the mention."""
MAX_CHARS = 1500
"""Of each message, what is kept (eleven of them fit a turn beside everything else)."""
_PAGE = 200
_PAGES = 5
"""A longer thread is paged through at most this far: its newest replies may then be missed."""
_WAIT = 10.0
"""Seconds the message waits for its thread at most (a rate limit's Retry-After included)."""
_PEOPLES = frozenset({None, "file_share", "thread_broadcast", "me_message"})
"""Subtypes of a message a person wrote; others (joins, topic changes, …) are not talk."""


async def thread_before(
    client: AsyncWebClient,
    channel: str,
    thread_ts: str,
    before_ts: str,
    *,
    bot_user_id: str,
    by: float | None = None,
) -> ReplyRef | None:
    """The thread `thread_ts` up to (not including) `before_ts`: its root and the latest
    `MAX_REPLIES` replies; None when Slack would not give it by `by` (the loop's clock: the
    message waits to be stored meanwhile, R202) or within `_WAIT` (logged once), or it is
    empty."""
    deadline = asyncio.get_running_loop().time() + _WAIT
    try:
        async with asyncio.timeout_at(deadline if by is None else min(by, deadline)):
            found = await _fetch(client, channel, thread_ts, before_ts)
    except (SlackApiError, SlackClientError, TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning("Slack: thread %s in %s not fetched (%s); answering without it",
                    thread_ts, channel, _why(exc))  # fmt: skip
        return None
    posts = [p for m in found if (p := _post(m, channel, thread_ts, bot_user_id)) is not None]
    if not posts:
        return None
    return ReplyRef("slack", channel, thread_ts, thread=tuple(posts))


async def _fetch(
    client: AsyncWebClient, channel: str, thread_ts: str, before_ts: str
) -> list[dict[str, Any]]:
    """The root (if still there) and the latest replies before `before_ts`, oldest first."""
    root: dict[str, Any] | None = None
    latest: deque[dict[str, Any]] = deque(maxlen=MAX_REPLIES)
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(_PAGES):
        page = await client.conversations_replies(
            channel=channel,
            ts=thread_ts,
            latest=before_ts,
            inclusive=False,
            limit=_PAGE,
            **({"cursor": cursor} if cursor else {}),
        )
        for message in page.get("messages") or []:
            ts = str(message.get("ts") or "") if isinstance(message, dict) else ""
            if not ts or ts in seen or _later(ts, before_ts):
                continue
            seen.add(ts)
            if ts == thread_ts:
                root = message
            else:
                latest.append(message)
        cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "") or None
        if not page.get("has_more") or cursor is None:
            break
    return ([root] if root is not None else []) + list(latest)


def _why(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        data = exc.response.data
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__


def _later(ts: str, before_ts: str) -> bool:
    try:
        return float(ts) >= float(before_ts)
    except ValueError:
        return True


def _post(message: dict[str, Any], channel: str, thread_ts: str, bot: str) -> ThreadPost | None:
    """One message as typed data: Steward's own, a person's, or an app's (another bot's)."""
    ts = str(message["ts"])
    text = _text(message)
    if not text:
        return None
    root = ts == thread_ts
    user = str(message.get("user") or "")
    app = app_of(message)
    if bot and user == bot:
        return ThreadPost(ts, text, by_bot=True, root=root)
    received_as = f"{channel}:{ts}"  # how the log keys an incoming Slack message
    if message.get("subtype") not in _PEOPLES:
        if message.get("subtype") != "bot_message":
            return None  # a join, a topic change: not something anyone said
        app = app or "app"
    if app or not user:
        return ThreadPost(ts, text, author=f"slack:bot:{app}", received_as=received_as, root=root)
    return ThreadPost(
        ts,
        text,
        author=f"slack:user:{user}",
        received_as=received_as,
        sender=Identity("slack", user),
        root=root,
    )


def _text(message: dict[str, Any]) -> str:
    """Its words as plain text, cut to `MAX_CHARS`, with its files named (not opened). An
    integration's alert (Grafana, PagerDuty) often has no `text`: its legacy attachments'
    and its blocks' words stand for it."""
    text = slack_to_plain(str(message.get("text") or "")).strip() or _extra_words(message)
    files = [f for f in message.get("files") or [] if isinstance(f, dict)]
    if files:
        names = ", ".join(str(f.get("name") or f.get("title") or "a file") for f in files[:5])
        text = f"{text}\n(files, not opened: {names})".strip()
    if len(text) > MAX_CHARS:
        note = f"… ({len(text):,} characters, cut)"
        text = text[: MAX_CHARS - len(note)] + note
    return text.encode("utf-8", "replace").decode()  # no lone surrogates


def _extra_words(message: dict[str, Any]) -> str:
    """The words of a post's legacy attachments (pretext, title, text, else fallback) and of its
    blocks' text fields (sections, headers, context), for a post with no `text`."""
    words: list[str] = []
    for item in message.get("attachments") or []:
        if isinstance(item, dict):
            parts = [str(item.get(k) or "") for k in ("pretext", "title", "text")]
            words.append(" ".join(p for p in parts if p) or str(item.get("fallback") or ""))
    for block in message.get("blocks") or []:
        if isinstance(block, dict):
            words.extend(_block_words(block))
    return slack_to_plain("\n".join(w for w in words if w.strip())).strip()


def _block_words(block: dict[str, Any]) -> list[str]:
    found: list[str] = []
    text = block.get("text")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        found.append(text["text"])
    for key in ("fields", "elements"):
        for item in block.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                found.append(item["text"])
    return found


def shares_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages shared into `event` (its `attachments` marked `is_share`): a link's unfurl
    or an app's legacy attachment is not one."""
    found = event.get("attachments") or []
    return [a for a in found if isinstance(a, dict) and a.get("is_share") is True]


def share_author(share: dict[str, Any]) -> str:
    """Who wrote a shared message, as a source name: its author, else the app that posted it,
    else the channel it was in."""
    if author := str(share.get("author_id") or ""):
        return f"slack:user:{author}"
    if app := str(share.get("bot_id") or share.get("app_id") or ""):
        return f"slack:bot:{app}"
    return f"slack:channel:{share.get('channel_id') or 'unknown'}"


OWN_SHARE = "[a message of mine they forwarded; its text is not shown]"


def share_words(share: dict[str, Any], mine: tuple[str, str] = ("", "")) -> str:
    """A shared message's words headed "[forwarded from …]" (its author's name and id, the
    channel it was in), with its files named: the model must not take them for the sender's.
    One of Steward's own (`mine`: its bot user and bot ids) is `OWN_SHARE`: it may be a card."""
    user, bot = mine
    author_id, app = str(share.get("author_id") or ""), str(share.get("bot_id") or "")
    if (user and author_id == user) or (bot and app == bot):
        return OWN_SHARE
    author = str(share.get("author_name") or share.get("author_subname") or "")
    who = share_author(share).rsplit(":", 1)[-1]
    origin = f"{author} ({who})" if author else who
    if channel := str(share.get("channel_name") or ""):
        origin += f" in #{channel}"
    text = slack_to_plain(str(share.get("text") or "")).strip()
    if not text:
        posts = [i.get("message") for i in share.get("message_blocks") or [] if isinstance(i, dict)]
        blocks = [b for p in posts if isinstance(p, dict) for b in p.get("blocks") or []]
        text = _extra_words({"blocks": blocks}) or str(share.get("fallback") or "").strip()
    files = [f for f in share.get("files") or [] if isinstance(f, dict)]
    if files:
        names = ", ".join(str(f.get("name") or f.get("title") or "a file") for f in files)
        text = f"{text}\n(its files: {names})".strip()
    return f"[forwarded from {origin}]:\n{text or '(no words)'}"
