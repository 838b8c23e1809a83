"""A loopback fake of OpenAI's speech-to-text API (`POST /v1/audio/transcriptions`), as local
whisper servers (faster-whisper-server, whisper.cpp's server, LocalAI) also speak it.

    async with FakeSTT(key="stt-key") as stt:
        stt.say(b"OggS...", "remind me to call mum")   # the transcript for those bytes
        ... STEWARD_STT_URL=stt.base_url ...

Multipart form: `file` (the audio), `model`, optional `response_format` (json | text |
verbose_json), `language`, `prompt`. Answers `{"text": …}`; 401 with OpenAI's error body when
a key is set and the request's Bearer token differs; 400 without a file or model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

__all__ = ["FakeSTT", "Transcription"]


@dataclass(frozen=True)
class Transcription:
    """One request as received."""

    filename: str
    content_type: str
    audio: bytes
    model: str
    response_format: str
    authorization: str


def _error(status: int, message: str, kind: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)


class FakeSTT:
    def __init__(self, *, key: str | None = None, default: str = "(fake transcript)") -> None:
        self.key = key
        self.default = default
        self.requests: list[Transcription] = []
        self.status: int | None = None
        """Set to answer every request with this HTTP error status."""
        self._said: dict[bytes, str] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def say(self, audio: bytes, text: str) -> None:
        """Transcribe exactly these bytes as `text`."""
        self._said[audio] = text

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _transcribe(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        if self.key is not None and authorization != f"Bearer {self.key}":
            return _error(401, "Incorrect API key provided", "invalid_request_error")
        if not request.content_type.startswith("multipart/form-data"):
            return _error(400, "Expected multipart/form-data", "invalid_request_error")
        form: dict[str, Any] = dict(await request.post())
        upload = form.get("file")
        model = str(form.get("model") or "")
        if not isinstance(upload, web.FileField):
            return _error(400, "you must provide a file", "invalid_request_error")
        if not model:
            return _error(400, "you must provide a model parameter", "invalid_request_error")
        audio = upload.file.read()
        response_format = str(form.get("response_format") or "json")
        self.requests.append(
            Transcription(
                upload.filename,
                upload.content_type,
                audio,
                model,
                response_format,
                authorization,
            )
        )
        if self.status is not None:
            return _error(self.status, "The server had an error", "server_error")
        text = self._said.get(audio, self.default)
        if response_format == "text":
            return web.Response(text=text)
        if response_format == "verbose_json":
            return web.json_response({"task": "transcribe", "text": text, "segments": []})
        return web.json_response({"text": text})
