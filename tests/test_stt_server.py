"""The speech-to-text client against servers that misbehave at the wire (R106): one that
answers a byte at a time for ever, and answers with a stray byte or a lone surrogate in the
transcript. Each is a loopback HTTP/1.1 server; the real client (httpx) talks to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from agent.media.stt import Transcriber, TranscriptionError

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def stt_server(answer: Answer) -> AsyncIterator[str]:
    """A server that reads one request (headers and body) and answers it with `answer`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        try:
            await answer(writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


def _json(body: bytes) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )
        await writer.drain()

    return answer


async def _drip(writer: asyncio.StreamWriter) -> None:
    """Headers, then a byte every 0.2 s, never done: each read is quick, the whole never ends."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Content-Length: 99999\r\n\r\n")
    for _ in range(10_000):
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.2)


async def _transcribe(url: str, seconds: float = 30.0) -> str:
    transcriber = Transcriber(url, model="whisper-1", timeout=seconds)
    return await asyncio.wait_for(
        transcriber.transcribe(b"OggS voice", filename="voice.ogg", mime_type="audio/ogg"), 20
    )


async def test_a_server_answering_a_byte_at_a_time_is_cut_off_at_the_timeout() -> None:
    """httpx's timeout is per read: a server sending a byte every half second held the chat,
    its later messages waiting, with no end."""
    async with stt_server(_drip) as url:
        with pytest.raises(TranscriptionError, match="took too long"):
            await _transcribe(url, seconds=1.0)


@pytest.mark.parametrize(
    ("body", "heard"),
    [
        # whisper.cpp writes a lone UTF-8 lead byte at some segment boundaries
        (b'{"text": "Ruf Mama an um f\xc3\xbcnf, \xe4 ok"}', "Ruf Mama an um fünf, \ufffd ok"),
        (b'{"text": "call mum \\ud83d at five"}', "call mum \ufffd at five"),
    ],
)
async def test_a_stray_byte_in_the_transcript_costs_that_character_not_the_voice_note(
    body: bytes, heard: str
) -> None:
    async with stt_server(_json(body)) as url:
        text = await _transcribe(url)
    assert text == heard
    text.encode("utf-8")  # storable and sendable as it is


async def test_an_answer_larger_than_any_transcript_is_refused() -> None:
    big = b'{"text": "' + b"a" * 5_000_000 + b'"}'
    async with stt_server(_json(big)) as url:
        with pytest.raises(TranscriptionError, match="no transcript"):
            await _transcribe(url)
