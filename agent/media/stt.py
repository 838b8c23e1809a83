"""Speech to text through any server that speaks OpenAI's `/v1/audio/transcriptions`
(a local whisper server, or a provider): multipart upload of the file and the model name,
`{"text": …}` back. The key goes only in the Authorization header and is never logged."""

from __future__ import annotations

import asyncio
import json
import logging
import re

from pydantic import SecretStr

from agent.attachments import plain_media_type
from agent.capped_decode import ACCEPT_ENCODING, BodyRefused, read_capped

__all__ = ["NOT_CONFIGURED", "NOT_HERE", "Transcriber", "TranscriptionError", "transcriptions_url"]

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "I can't listen to voice notes yet: no speech-to-text server is configured. Set "
    "STEWARD_STT_URL to a server with the OpenAI-compatible /v1/audio/transcriptions API (a local "
    "whisper server such as faster-whisper-server, or a provider like https://api.openai.com), "
    "STEWARD_STT_KEY to its API key if it needs one and STEWARD_STT_MODEL to its model "
    "(e.g. whisper-1), in the .env file, then restart Steward. Your message is saved."
)


MAX_ANSWER_BYTES = 4_000_000  # hours of speech are a few hundred KB of text
_SURROGATE = re.compile("[\ud800-\udfff]")


NOT_HERE = "I can't listen to voice notes here; please write your message instead."


class TranscriptionError(Exception):
    """The server could not transcribe the file; the message is for the user."""


def transcriptions_url(base: str) -> str:
    """The endpoint for a configured URL: a server root, its `/v1`, or the endpoint itself."""
    base = base.rstrip("/")
    if base.endswith("/audio/transcriptions"):
        return base
    if base.endswith("/v1"):
        return base + "/audio/transcriptions"
    return base + "/v1/audio/transcriptions"


class Transcriber:
    def __init__(
        self, url: str, *, model: str, key: SecretStr | None = None, timeout: float = 120.0
    ) -> None:
        self._url = transcriptions_url(url)
        self._model = model
        self._key = key
        self._timeout = timeout

    async def transcribe(self, audio: bytes, *, filename: str, mime_type: str) -> str:
        headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING}
        if self._key is not None and self._key.get_secret_value():
            headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        if not filename.isascii():  # the server reads the format from the suffix alone, and
            # not every one takes a multipart name in another script (inbox/ keeps them now)
            suffix = filename.rpartition(".")[2] if "." in filename else ""
            filename = "audio" + (f".{suffix}" if suffix.isascii() and suffix.isalnum() else "")
        files = {"file": (filename, audio, _media_type(mime_type))}
        data = {"model": self._model, "response_format": "json"}
        import httpx  # with its CLI's rich and click: 50-70 ms, not at start-up (issue 19)

        try:
            # the whole exchange within the timeout, the answer within a cap: httpx's timeout
            # is per read, and a server sending a byte every half second held the chat (R106)
            async with (
                asyncio.timeout(self._timeout),
                httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client,
                client.stream("POST", self._url, headers=headers, files=files, data=data) as got,
            ):
                status = got.status_code
                body = b""
                if status < 400:
                    encoding = got.headers.get("content-encoding")
                    body = await read_capped(got.aiter_raw(), encoding, MAX_ANSWER_BYTES)
        except TimeoutError:
            log.warning("speech-to-text server did not answer within %.0f s", self._timeout)
            raise TranscriptionError("the speech-to-text server took too long") from None
        except BodyRefused:
            log.warning("speech-to-text server sent an answer too large or malformed")
            raise TranscriptionError("the speech-to-text server sent back no transcript") from None
        except httpx.HTTPError as exc:
            log.warning("speech-to-text server not reachable: %s", type(exc).__name__)
            raise TranscriptionError("the speech-to-text server could not be reached") from None
        if status in (401, 403):
            raise TranscriptionError(
                "the speech-to-text server refused the key (check STEWARD_STT_KEY)"
            )
        if status >= 400:
            log.warning("speech-to-text server answered HTTP %s", status)
            raise TranscriptionError(
                f"the speech-to-text server answered with an error (HTTP {status})"
            )
        return _transcript(body)


def _transcript(body: bytes) -> str:
    """The `text` of the server's JSON answer. A stray byte (whisper.cpp writes a lone UTF-8
    lead byte at some segment boundaries) or a lone surrogate escape becomes U+FFFD: it lost
    the whole voice note before (R106)."""
    try:
        text = json.loads(body.decode("utf-8", "replace")).get("text")
    except (ValueError, AttributeError):
        text = None
    if not isinstance(text, str):
        raise TranscriptionError("the speech-to-text server sent back no transcript")
    return _SURROGATE.sub("\ufffd", text).strip()


def _media_type(said: str) -> str:
    """The sender's MIME type as a part header may carry it: `type/subtype` only (a line
    break or parameters in it wrote headers of the sender's own into the request)."""
    said = (said or "").strip().lower()
    return said if plain_media_type(said) else "application/octet-stream"
