"""Speech to text through any server that speaks OpenAI's `/v1/audio/transcriptions`
(a local whisper server, or a provider): multipart upload of the file and the model name,
`{"text": …}` back. The key goes only in the Authorization header and is never logged."""

from __future__ import annotations

import logging

from pydantic import SecretStr

from agent.attachments import plain_media_type

__all__ = ["NOT_CONFIGURED", "Transcriber", "TranscriptionError", "transcriptions_url"]

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "I can't listen to voice notes yet: no speech-to-text server is configured. Set "
    "STEWARD_STT_URL to a server with the OpenAI-compatible /v1/audio/transcriptions API (a local "
    "whisper server such as faster-whisper-server, or a provider like https://api.openai.com), "
    "STEWARD_STT_KEY to its API key if it needs one and STEWARD_STT_MODEL to its model "
    "(e.g. whisper-1), in the .env file, then restart Steward. Your message is saved."
)


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
        headers = {"Accept": "application/json"}
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
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
                response = await client.post(self._url, headers=headers, files=files, data=data)
        except httpx.HTTPError as exc:
            log.warning("speech-to-text server not reachable: %s", type(exc).__name__)
            raise TranscriptionError("the speech-to-text server could not be reached") from None
        if response.status_code in (401, 403):
            raise TranscriptionError(
                "the speech-to-text server refused the key (check STEWARD_STT_KEY)"
            )
        if response.status_code >= 400:
            log.warning("speech-to-text server answered HTTP %s", response.status_code)
            raise TranscriptionError(
                f"the speech-to-text server answered with an error (HTTP {response.status_code})"
            )
        try:
            text = response.json().get("text")
        except (ValueError, AttributeError):
            text = None
        if not isinstance(text, str):
            raise TranscriptionError("the speech-to-text server sent back no transcript")
        return text.strip()


def _media_type(said: str) -> str:
    """The sender's MIME type as a part header may carry it: `type/subtype` only (a line
    break or parameters in it wrote headers of the sender's own into the request)."""
    said = (said or "").strip().lower()
    return said if plain_media_type(said) else "application/octet-stream"
