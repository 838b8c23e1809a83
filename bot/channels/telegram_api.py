"""A small Telegram Bot API client over aiohttp: exactly the calls Steward makes.

`call(method, **params)` POSTs the parameters as a form (ints and strings as text, booleans as
`true`/`false`, lists and objects as JSON; None left out, as the Bot API documents) to
`{base}/bot<token>/<method>` and returns the `result` of the answer; `download` streams a file
from `{base}/file/bot<token>/<path>` with a cap. What fails raises one of the exceptions below:
the server's `{"ok": false}` answer by its status (429 carries `retry_after`, a group that became
a supergroup `migrate_to_chat_id`), the network (refused, cut, timed out) or an answer that is
not the Bot API's JSON as `TelegramNetworkError`.

The token is a `SecretStr`: it is in the URL of every request, so no URL is ever logged or put
in an exception; aiohttp's own exceptions (which can carry the URL) are replaced, token scrubbed
from their text, and neither chained nor kept as the new one's context.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import SecretStr

__all__ = [
    "DEFAULT_API_BASE",
    "TelegramAPIError",
    "TelegramApi",
    "TelegramBadRequest",
    "TelegramConflict",
    "TelegramEntityTooLarge",
    "TelegramError",
    "TelegramForbidden",
    "TelegramMigrated",
    "TelegramNetworkError",
    "TelegramNotFound",
    "TelegramRetryAfter",
    "TelegramServerError",
    "TelegramUnauthorized",
    "valid_token",
]

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.telegram.org"
DEFAULT_TIMEOUT = 60.0


class TelegramError(Exception):
    """Anything a Bot API call failed with. `str()` never holds the token."""


class TelegramNetworkError(TelegramError):
    """The server could not be reached, the connection broke or timed out, or the answer was
    not the Bot API's JSON."""


class TelegramAPIError(TelegramError):
    """The Bot API answered `{"ok": false}`: `status` (its error_code) and `description`."""

    def __init__(self, method: str, status: int, description: str) -> None:
        super().__init__(f"{method}: {description}")
        self.method, self.status, self.description = method, status, description


class TelegramBadRequest(TelegramAPIError):
    """400: e.g. "can't parse entities", "message is not modified", "file is too big"."""


class TelegramUnauthorized(TelegramAPIError):
    """401: the token was refused."""


class TelegramForbidden(TelegramAPIError):
    """403: e.g. the bot was blocked by the user or removed from the group."""


class TelegramNotFound(TelegramAPIError):
    """404: e.g. a method this server does not have (sendMessageDraft before Bot API 9.3)."""


class TelegramConflict(TelegramAPIError):
    """409: another getUpdates is running, or a webhook is set."""


class TelegramEntityTooLarge(TelegramAPIError):
    """413: the request was too large."""


class TelegramServerError(TelegramAPIError):
    """5xx."""


class TelegramRetryAfter(TelegramAPIError):
    """429 flood control: wait `retry_after` seconds before the next call."""

    def __init__(self, method: str, status: int, description: str, retry_after: int) -> None:
        super().__init__(method, status, description)
        self.retry_after = retry_after


class TelegramMigrated(TelegramAPIError):
    """The group became a supergroup: send to `migrate_to_chat_id` instead."""

    def __init__(self, method: str, status: int, description: str, migrate_to: int) -> None:
        super().__init__(method, status, description)
        self.migrate_to_chat_id = migrate_to


_BY_STATUS: dict[int, type[TelegramAPIError]] = {
    400: TelegramBadRequest,
    401: TelegramUnauthorized,
    403: TelegramForbidden,
    404: TelegramNotFound,
    409: TelegramConflict,
    413: TelegramEntityTooLarge,
}


def valid_token(token: str) -> bool:
    """Whether `token` looks like a bot token: `<bot id>:<secret>`, no spaces."""
    bot_id, sep, secret = token.partition(":")
    return bool(sep and bot_id.isdigit() and secret) and not any(c.isspace() for c in token)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def api_error(method: str, status: int, answer: Mapping[str, Any]) -> TelegramAPIError:
    """The exception for a Bot API `{"ok": false, ...}` answer given with HTTP `status`."""
    code = answer.get("error_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else status
    description = str(answer.get("description") or f"HTTP {status}")
    parameters = answer.get("parameters")
    parameters = parameters if isinstance(parameters, Mapping) else {}
    retry_after = parameters.get("retry_after")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        return TelegramRetryAfter(method, code, description, max(0, int(retry_after)))
    migrate_to = parameters.get("migrate_to_chat_id")
    if isinstance(migrate_to, int) and not isinstance(migrate_to, bool):
        return TelegramMigrated(method, code, description, migrate_to)
    if code >= 500:
        return TelegramServerError(method, code, description)
    return _BY_STATUS.get(code, TelegramAPIError)(method, code, description)


class TelegramApi:
    """One bot's Bot API client. The connection pool is made on first use; `close()` drops it
    (the next call makes a fresh one, which is how a stalled pool is replaced)."""

    def __init__(
        self,
        token: SecretStr | str,
        base: str | None = None,
        *,
        local: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.base = (base or DEFAULT_API_BASE).rstrip("/")
        self.local = local
        """A local Bot API server (`--local`): getFile gives a path on its disk."""
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"TelegramApi(base={self.base!r})"

    @property
    def bot_id(self) -> int:
        """The bot's own user id: the token's first part."""
        return int(self._token.get_secret_value().partition(":")[0])

    def _scrub(self, text: str) -> str:
        token = self._token.get_secret_value()
        return text.replace(token, "<token>") if token else text

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context: ssl.SSLContext | bool = True
            try:
                import certifi

                context = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - certifi comes with httpx
                pass
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context, limit=100),
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _url(self, kind: str, path: str) -> str:
        return f"{self.base}/{kind}{self._token.get_secret_value()}/{path}"

    def _network_error(self, method: str, exc: BaseException) -> TelegramNetworkError:
        if isinstance(exc, TimeoutError):
            return TelegramNetworkError(f"{method}: request timed out")
        return TelegramNetworkError(self._scrub(f"{method}: {type(exc).__name__}: {exc}"))

    async def call(
        self, method: str, /, *, request_timeout: float | None = None, **params: Any
    ) -> Any:
        """Call `method` with `params` (None values left out); the answer's `result`."""
        form = {key: _form_value(value) for key, value in params.items() if value is not None}
        timeout = aiohttp.ClientTimeout(total=request_timeout or self._timeout)
        failed: TelegramNetworkError | None = None
        try:
            async with self._http().post(
                self._url("bot", method), data=form, timeout=timeout
            ) as response:
                status = response.status
                body = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            failed = self._network_error(method, exc)
        if failed is not None:
            raise failed  # outside the except: aiohttp's error (the URL in it) is not kept
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise TelegramNetworkError(f"{method}: HTTP {status}, not a Bot API answer")
        if answer.get("ok") is True and 200 <= status < 300:
            return answer.get("result")
        raise api_error(method, status, answer)

    async def download(self, file_path: str, max_bytes: int, *, chunk: int = 64 * 1024) -> bytes:
        """The file at `file_path` (from getFile); `OverflowError` past `max_bytes` (nothing
        more is read), `TelegramNetworkError` for any other failure."""
        data = bytearray()
        timeout = aiohttp.ClientTimeout(total=120)
        failed: TelegramNetworkError | None = None
        try:
            async with self._http().get(self._url("file/bot", file_path), timeout=timeout) as r:
                if r.status != 200:
                    raise TelegramNetworkError(f"file download: HTTP {r.status}")
                async for piece in r.content.iter_chunked(chunk):
                    data += piece
                    if len(data) > max_bytes:
                        raise OverflowError(max_bytes)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            failed = self._network_error("file download", exc)
        if failed is not None:
            raise failed
        return bytes(data)
