"""A loopback fake of the Telegram Bot API that Steward's own client talks to.

Usage::

    async with FakeTelegram() as tg:
        api = TelegramApi(tg.token, tg.base_url)  # bot/channels/telegram_api.py
        tg.push_message("/start")
        ...
        await tg.wait_for("sendMessage")

Every request is recorded in ``calls`` (form values stay strings, JSON-string fields are decoded).
Updates are queued for ``getUpdates`` and removed only when a later poll confirms them with
``offset``, like the real server, so an update answered to a poll whose client went away is
delivered again.

(Over 400 lines: one fake of one API. The methods Steward calls, the update queue, file
downloads and the webhook side are one wire contract, read together.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["ApiCall", "FakeTelegram", "TelegramError", "post_webhook"]

JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "scope",
        "media",
    }
)
MAX_TEXT = 4096
EMPTY = frozenset(
    chr(code)
    for code in (
        *(0x00A0, 0x1680, 0x180E, 0x202E, 0x202F, 0x205F, 0x2800, 0x3000, 0xFEFF, 0xFFFC),
        *range(0x2000, 0x200B),  # replaced by a space
        *range(0x200B, 0x2010),  # zero-width space, (non-)joiner, marks
        *range(0xE0000, 0xE0080),  # tags
    )
)
"""Characters TDLib's `strip_empty_characters` counts as nothing: a text of these and
whitespace alone is "message text is empty"."""
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
    | {"tg-spoiler", "span", "blockquote", "tg-emoji"}
)
HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_VALID_CHAR_REF = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_TAG = re.compile(r"<[^<>]*>")
METHODS = (
    "getMe",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
    "sendChatAction",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "deleteWebhook",
    "setWebhook",
    "getWebhookInfo",
    "deleteMessage",
    "getChat",
    "sendMessageDraft",
    "getFile",
)
FILE_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


@dataclass
class ApiCall:
    """One request the fake received. ``status`` is None while a long poll is still waiting."""

    method: str
    params: dict[str, Any]
    status: int | None = None
    result: Any = None
    at: float = field(default_factory=time.perf_counter)
    """When the request arrived (`time.perf_counter()`)."""


class TelegramError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, ...}``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _TelegramHTML(HTMLParser):
    """Strict parse of Telegram's HTML subset into plain text plus message entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.text: list[str] = []
        self.length = 0  # in UTF-16 code units, as Telegram counts entity offsets
        self.stack: list[tuple[str, dict[str, str | None], int]] = []
        self.entities: list[dict[str, Any]] = []

    def _add(self, chunk: str) -> None:
        self.text.append(chunk)
        self.length += _utf16_len(chunk)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag not in HTML_TAGS:
            raise ValueError(f'Unsupported start tag "{tag}"')
        if tag == "span" and attr.get("class") != "tg-spoiler":
            raise ValueError('Tag "span" must have class "tg-spoiler"')
        if tag == "a" and not attr.get("href"):
            raise ValueError('Tag "a" must have attribute "href"')
        self.stack.append((tag, attr, self.length))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise ValueError(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            raise ValueError(f'Unmatched end tag "{tag}"')
        _, attr, start = self.stack.pop()
        if self.length == start:
            return
        entity: dict[str, Any] = {
            "type": HTML_ENTITY_TYPES[tag],
            "offset": start,
            "length": self.length - start,
        }
        if tag == "a":
            entity["url"] = attr["href"]
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = attr.get("emoji-id") or ""
        elif tag == "blockquote" and "expandable" in attr:
            entity["type"] = "expandable_blockquote"
        elif tag == "code" and (cls := attr.get("class") or "").startswith("language-"):
            entity["language"] = cls.removeprefix("language-")
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        if "<" in data:
            raise ValueError(f'Unsupported start tag at "{data[data.index("<") :][:20]}"')
        if "&" in data:
            raise ValueError("Unescaped '&' in text")
        self._add(data)

    def handle_entityref(self, name: str) -> None:
        self._add({"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[name])

    def handle_charref(self, name: str) -> None:
        self._add(chr(int(name[1:], 16) if name[:1] in "xX" else int(name)))

    def handle_comment(self, data: str) -> None:
        raise ValueError("Unsupported comment")

    def handle_decl(self, decl: str) -> None:
        raise ValueError("Unsupported declaration")

    handle_pi = handle_decl
    unknown_decl = handle_decl


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Return (plain text, entities) or raise ValueError like Telegram's strict HTML parser."""
    outside_tags = _TAG.sub("", text)
    if "&" in _VALID_CHAR_REF.sub("", outside_tags):
        raise ValueError("Unescaped '&': use &amp;")
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1][0]}"')
    # <pre><code class="language-x"> becomes one pre entity carrying the language
    entities = parser.entities
    for pre in [e for e in entities if e["type"] == "pre"]:
        for code in [e for e in entities if e["type"] == "code" and "language" in e]:
            if (code["offset"], code["length"]) == (pre["offset"], pre["length"]):
                pre["language"] = code["language"]
                entities.remove(code)
    entities = sorted(entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.text), entities


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _maybe_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


class FakeTelegram:
    """Fake Bot API server on 127.0.0.1 (random port). Use as an async context manager."""

    def __init__(
        self, token: str = "123456:TEST-token", bot_username: str = "steward_test_bot"
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Steward",
            "username": bot_username,
        }
        self.base_url = ""
        self.calls: list[ApiCall] = []
        self.completed_polls = 0
        self.webhook: dict[str, Any] | None = None
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.files: dict[str, dict[str, Any]] = {}  # file_id -> File + "content"
        self.downloads: list[str] = []  # file paths fetched from /file/bot<token>/…
        self._updates: list[dict[str, Any]] = []
        self._allowed_updates: set[str] | None = None
        self._next_update_id = 100_000_001
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._failures: dict[str, deque[TelegramError]] = {}
        self._reject_entities = 0
        self.edit_interval = 1.0
        """Flood control: an edit of the same message, or a draft in the same chat, sooner than
        this many seconds after the last one is answered 429 with `retry_after`."""
        self.drafts_supported = True
        """False: sendMessageDraft answers 404 like a Bot API server older than 9.3."""
        self._paced: dict[tuple[Any, ...], float] = {}
        self._stall = False
        self._stopping = False
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            name.lower(): getattr(self, f"_m_{name}") for name in METHODS
        }
        self._canonical = {name.lower(): name for name in (*METHODS, "getUpdates")}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- scripting ---------------------------------------------------------------------------

    @property
    def stall_polls(self) -> bool:
        """When True, getUpdates (also polls already waiting) hangs until unset or stop()."""
        return self._stall

    @stall_polls.setter
    def stall_polls(self, value: bool) -> None:
        self._stall = value
        self._notify()

    def push_update(self, update: dict[str, Any]) -> int:
        update = dict(update)
        update_id = update["update_id"] = int(update.get("update_id", self._next_update_id))
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._updates.append(update)
        self._updates.sort(key=lambda u: u["update_id"])
        self._notify()
        return update_id

    def push_message(
        self,
        text: str,
        *,
        user_id: int = 1001,
        chat_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Ann",
        username: str | None = None,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        update_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """A message from a person; `extra` adds fields (photo, caption, document, voice,
        forward_origin, external_reply, quote…), and an empty `text` is left out."""
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": "en",
        }
        if chat_type == "private":
            chat: dict[str, Any] = {"id": user_id if chat_id is None else chat_id}
            chat |= {"type": "private", "first_name": first_name}
        else:
            chat = {"id": -1001234567890 if chat_id is None else chat_id}
            chat |= {"type": chat_type, "title": "Test chat"}
        if username:
            user["username"] = chat["username"] = username
            if chat_type != "private":
                del chat["username"]
        self.chats[chat["id"]] = chat
        message = self._new_message(chat, user, text)
        if entities is not None:
            message["entities"] = entities
        elif text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        if reply_to_message_id is not None:
            replied = self.messages.get((chat["id"], reply_to_message_id))
            message["reply_to_message"] = replied or {
                "message_id": reply_to_message_id,
                "date": message["date"],
                "chat": chat,
            }
        if extra:
            message |= extra
        if not text:
            message.pop("text", None)
        update: dict[str, Any] = {"message": message}
        if update_id is not None:
            update["update_id"] = update_id
        return self.push_update(update)

    def add_file(
        self, content: bytes, *, path: str = "documents/file", size: int | None = None
    ) -> dict[str, Any]:
        """Serve `content` through getFile and the file URL; returns the fields a message's
        PhotoSize / Document / Voice carries (`size` claims another size, e.g. 60 MB)."""
        number = len(self.files) + 1
        file_id = f"FILE{number:04d}-{abs(hash(content)) % 10**8}"
        entry = {
            "file_id": file_id,
            "file_unique_id": f"U{number:04d}",
            "file_size": len(content) if size is None else size,
            "file_path": f"{path}_{number}",
            "content": content,
        }
        self.files[file_id] = entry
        return {k: entry[k] for k in ("file_id", "file_unique_id", "file_size")}

    def push_callback(
        self,
        data: str,
        *,
        user_id: int,
        chat_id: int,
        message_id: int,
        update_id: int | None = None,
    ) -> int:
        chat = self._chat(chat_id)
        message = self.messages.get((chat_id, message_id)) or {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            "text": "…",
        }
        user = {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"}
        if user_id == chat_id:
            user["first_name"] = chat.get("first_name", "Ann")
        query = {
            "id": str(next(self._callback_ids) + 4_000_000_000_000_000),
            "from": user,
            "message": message,
            "chat_instance": str(abs(chat_id) * 7 + 13),
            "data": data,
        }
        update: dict[str, Any] = {"callback_query": query}
        if update_id is not None:
            update["update_id"] = update_id
        return self.push_update(update)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls to ``method`` with an error (429 gets retry_after=1)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                400: "Bad Request: simulated failure",
                403: "Forbidden: bot was blocked by the user",
                404: "Not Found",
                409: "Conflict: terminated by other getUpdates request",
            }.get(status, "Internal Server Error")
        queue = self._failures.setdefault(method.lower(), deque())
        queue.extend(TelegramError(status, description, retry_after) for _ in range(times))

    def reject_entities_next(self, times: int = 1) -> None:
        """The next ``times`` sendMessage calls WITH parse_mode answer "can't parse entities"."""
        self._reject_entities += times

    # -- inspection --------------------------------------------------------------------------

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Queued updates not yet confirmed by a getUpdates offset (e.g. to post to a webhook)."""
        return list(self._updates)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the helper's contract
    ) -> list[ApiCall]:
        """Wait until ``count`` calls to ``method`` were handled; return all calls to it."""
        try:
            async with asyncio.timeout(timeout):
                while len(found := self.calls_to(method)) < count:
                    await self._changed.wait()
        except TimeoutError:
            seen = Counter(call.method for call in self.calls)
            summary = ", ".join(f"{name} x{n}" for name, n in seen.items()) or "nothing"
            raise TimeoutError(
                f"waited {timeout}s for {count} call(s) to {method}, got "
                f"{len(self.calls_to(method))}; methods seen: {summary}"
            ) from None
        return found

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """Requested ``text`` of successful sendMessage/editMessageText calls (as sent, markup
        included), optionally only those to ``chat_id``."""
        return [
            str(call.params["text"])
            for call in self.calls
            if call.method in ("sendMessage", "editMessageText")
            and call.status == 200
            and (chat_id is None or _maybe_int(call.params.get("chat_id")) == chat_id)
        ]

    # -- HTTP --------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path.startswith("/file/bot"):
            return self._download(request)
        token, sep, method = request.path.removeprefix("/bot").partition("/")
        if not request.path.startswith("/bot") or not sep:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        if token != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params = await self._read_params(request)
        call = ApiCall(self._canonical.get(method.lower(), method), params)
        self.calls.append(call)
        self._notify()  # wait_for() sees a long poll as soon as it starts
        try:
            if failures := self._failures.get(method.lower()):
                raise failures.popleft()
            if method.lower() == "getupdates":
                result = await self._get_updates(params, request)
            elif handler := self._methods.get(method.lower()):
                result = handler(params)
            else:
                raise TelegramError(404, "Not Found: method not found")
        except TelegramError as error:
            call.status, call.result = error.status, error.payload()
            self._notify()
            return web.json_response(call.result, status=error.status)
        call.status, call.result = 200, result
        self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json() if request.can_read_body else {})
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    params[key] = {"filename": value.filename, "content": value.file.read()}
                else:
                    params[key] = value
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params

    # -- methods -----------------------------------------------------------------------------

    async def _get_updates(self, params: dict[str, Any], request: web.Request) -> list[Any]:
        if self.webhook:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        if "allowed_updates" in params:
            self._allowed_updates = set(params["allowed_updates"]) or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get("timeout") or 0)
        ready: list[dict[str, Any]] = []
        while not self._stopping:
            if not self._stall:
                if self._allowed_updates is not None:
                    self._updates = [
                        u for u in self._updates if _update_type(u) in self._allowed_updates
                    ]
                ready = self._updates[:limit]
                if ready or loop.time() >= deadline:
                    break
            changed = self._changed
            remaining = None if self._stall else deadline - loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        transport = request.transport
        if not self._stopping and transport is not None and not transport.is_closing():
            self.completed_polls += 1
        return ready

    def _download(self, request: web.Request) -> web.Response:
        """GET /file/bot<token>/<file_path>, as api.telegram.org serves files."""
        token, _, path = request.path.removeprefix("/file/bot").partition("/")
        if token != self.token:
            return web.Response(status=401, text="Unauthorized")
        entry = next((f for f in self.files.values() if f["file_path"] == path), None)
        if entry is None:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(path)
        self._notify()
        return web.Response(body=entry["content"], content_type="application/octet-stream")

    def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self.files.get(str(params.get("file_id") or ""))
        if entry is None:
            raise TelegramError(400, "Bad Request: invalid file_id")
        if entry["file_size"] > FILE_LIMIT:
            raise TelegramError(400, "Bad Request: file is too big")
        return {k: entry[k] for k in ("file_id", "file_unique_id", "file_size", "file_path")}

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        chat_id = _maybe_int(chat_id)
        if not isinstance(chat_id, int):
            raise TelegramError(400, "Bad Request: chat not found")
        if chat_id not in self.chats:
            if chat_id > 0:
                kind = "private"
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            self.chats[chat_id] = {"id": chat_id, "type": kind}
        return self.chats[chat_id]

    def _new_message(
        self, chat: dict[str, Any], sender: dict[str, Any], text: str
    ) -> dict[str, Any]:
        message = {
            "message_id": next(self._message_ids),
            "from": sender,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _render(
        self, params: dict[str, Any], *, send: bool = False
    ) -> tuple[str, list[dict[str, Any]] | None]:
        text = str(params.get("text") or "")
        parse_mode = str(params.get("parse_mode") or "")
        entities: list[dict[str, Any]] | None = params.get("entities")
        if send and parse_mode and self._reject_entities:
            self._reject_entities -= 1
            raise TelegramError(
                400, "Bad Request: can't parse entities: Can't find end of the entity"
            )
        if parse_mode.lower() == "html":
            try:
                text, entities = parse_html(text)
            except (ValueError, KeyError) as e:
                raise TelegramError(400, f"Bad Request: can't parse entities: {e}") from None
        if all(char.isspace() or char in EMPTY for char in text):
            raise TelegramError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise TelegramError(400, "Bad Request: message is too long")
        return text, entities or None

    def _target(self, params: dict[str, Any], what: str) -> dict[str, Any] | None:
        """The stored message addressed by chat_id/message_id; None for inline messages."""
        if params.get("inline_message_id"):
            return None
        key = (_maybe_int(params.get("chat_id")), _maybe_int(params.get("message_id")))
        if key not in self.messages:
            raise TelegramError(400, f"Bad Request: message to {what} not found")
        return self.messages[key]

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        text, entities = self._render(params, send=True)
        message = self._new_message(chat, self.bot_user, text)
        if entities:
            message["entities"] = entities
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        topic = _maybe_int(params.get("message_thread_id"))
        if topic and chat.get("type") == "supergroup":  # a forum's topic keeps what is sent in it
            message |= {"message_thread_id": topic, "is_topic_message": True}
        reply = params.get("reply_parameters") or {}
        reply_id = _maybe_int(params.get("reply_to_message_id") or reply.get("message_id"))
        if replied := self.messages.get((chat["id"], reply_id)):
            message["reply_to_message"] = replied
        return message

    def _pace(self, key: tuple[Any, ...]) -> None:
        """Telegram's flood control for edits and drafts (limits are not published; streamers
        meet 429s at about two edits a second): too soon after the last one -> 429."""
        now = time.perf_counter()
        last = self._paced.get(key)
        if last is not None and now - last < self.edit_interval:
            wait = max(1, round(self.edit_interval - (now - last) + 0.49))
            raise TelegramError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        self._paced[key] = now

    def _m_sendMessageDraft(self, params: dict[str, Any]) -> bool:
        """Bot API 9.3+: an ephemeral, animated preview in a private chat (empty text shows
        "Thinking..."); the same `draft_id` updates it."""
        if not self.drafts_supported:
            raise TelegramError(404, "Not Found: method not found")
        chat = self._chat(params.get("chat_id"))
        if chat.get("type") != "private":
            raise TelegramError(400, "Bad Request: drafts can be sent only to private chats")
        if not _maybe_int(params.get("draft_id")):
            raise TelegramError(400, "Bad Request: draft_id must be non-zero")
        if str(params.get("text") or "").strip():
            self._render(params)
        self._pace(("draft", chat["id"]))
        return True

    def drafts(self, chat_id: int | None = None) -> list[str]:
        """Requested ``text`` of the accepted sendMessageDraft calls (as sent)."""
        return [
            str(call.params.get("text") or "")
            for call in self.calls_to("sendMessageDraft")
            if call.status == 200
            and (chat_id is None or _maybe_int(call.params.get("chat_id")) == chat_id)
        ]

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        text, entities = self._render(params)
        message = self._target(params, "edit")
        if message is None:
            return True
        markup = params.get("reply_markup")
        same_markup = markup is None or markup == message.get("reply_markup")
        if text == message.get("text") and entities == message.get("entities") and same_markup:
            raise TelegramError(400, NOT_MODIFIED)
        self._pace(("edit", message["chat"]["id"], message["message_id"]))
        message.update(text=text, edit_date=int(time.time()))
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        elif markup is None:
            message.pop("reply_markup", None)
        return message

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        message = self._target(params, "edit")
        if message is None:
            return True
        markup = params.get("reply_markup")
        if markup == message.get("reply_markup"):
            raise TelegramError(400, NOT_MODIFIED)
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return message

    def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        message = self._target(params, "delete")
        if message is not None:
            del self.messages[(message["chat"]["id"], message["message_id"])]
        return True

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        self._chat(params.get("chat_id"))
        return True

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands[self._commands_key(params)] = list(params.get("commands") or [])
        return True

    def _m_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands.get(self._commands_key(params), [])

    def _m_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        if not params.get("url"):
            return self._m_deleteWebhook(params)
        self.webhook = dict(params)
        if str(params.get("drop_pending_updates")).lower() == "true":
            self._updates.clear()
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if str(params.get("drop_pending_updates")).lower() == "true":
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook and self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _m_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        gifts = ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription")
        return self._chat(params.get("chat_id")) | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys((*gifts, "gifts_from_channels"), False),
        }


async def post_webhook(url: str, update: dict[str, Any], secret: str | None = None) -> int:
    """POST ``update`` to a bot's webhook as Telegram does; return the HTTP status."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=update, headers=headers) as response,
    ):
        await response.read()
        return response.status
