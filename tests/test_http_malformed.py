"""Whatever anyone who reaches the port sends, the answer is a 4xx and at most a line a minute:
never a 500, never a traceback each (review 36, second round).

A body said to be gzip or deflate that was not (Slack's events path, the console's sign-in)
was a 500 with a traceback; one said to be br (no Brotli here) was aiohttp's own ERROR and
traceback; so was any request aiohttp cannot parse. Nothing that sends to Steward compresses
its body, so none is decompressed, and aiohttp's parse errors are one warning a minute."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack
from harness import echo_reply, slack_steward
from test_web_security import Web, web  # noqa: F401
from test_webhook_bad_bodies import _post

MP = {"Content-Type": "multipart/form-data; boundary=zz"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BODIES = [
    (MP, b"--zz\r\nContent-Disposition: form-data\r\n\r\nv\r\n--zz--\r\n"),
    (MP, b"--zz\r\n\r\nv\r\n--zz--\r\n"),
    (
        MP,
        b'--zz\r\nContent-Disposition: form-data; name="token"\r\n'
        b"Content-Type: text/plain; charset=nope\r\n\r\nv\r\n--zz--\r\n",
    ),
    (
        MP,
        b'--zz\r\nContent-Disposition: form-data; name="token"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!\r\n--zz--\r\n",
    ),
    (
        MP,
        b'--zz\r\nContent-Disposition: form-data; name="token"\r\n'
        b"Content-Encoding: gzip\r\n\r\nnotgzip\r\n--zz--\r\n",
    ),
    (MP, b'--zz\r\nContent-Disposition: form-data; name="token"\r\n'),
    ({"Content-Type": "multipart/form-data; boundary=" + "z" * 100}, b"x"),
    (FORM, b"token=%ff%fe"),
    ({**FORM, "Content-Encoding": "gzip"}, b"notgzip"),
    ({**FORM, "Content-Encoding": "deflate"}, b"notdeflate"),
    ({**FORM, "Content-Encoding": "br"}, b"notbr"),
]


def _loud(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_the_sign_in_form_takes_any_body_without_a_500(
    web: Web,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    for headers, body in BODIES:
        response, text = await web.request(
            "POST", "/login", headers={**web.origin(), **headers}, data=body
        )
        assert 400 <= response.status < 500, (headers, body, response.status, text[:200])
    assert _loud(caplog) == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_slack_events_take_a_compressed_unsigned_body_without_a_500(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture, encoding: str
) -> None:
    fake_model.on_request(echo_reply)
    caplog.set_level(logging.INFO)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
        statuses = {await _post(url, headers, b"not compressed") for _ in range(5)}
    assert statuses <= {400, 401}, statuses
    assert _loud(caplog) == []


async def test_requests_aiohttp_cannot_parse_are_one_warning_a_minute(
    web: Web,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    host, port = web.base.removeprefix("http://").split(":")
    bad = [
        b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ]
    answers = []
    for _ in range(10):
        for raw in bad:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + raw)  # after a good one
            await writer.drain()
            answers.append(await asyncio.wait_for(reader.read(), 10))
            writer.close()
    assert all(b" 400 Bad Request" in answer for answer in answers), answers[:3]
    assert _loud(caplog) == []
    said = [r.getMessage() for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(said) == 1, said
