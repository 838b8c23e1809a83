"""A form the console cannot read is a 400 and a throttled line, not a 500 and a traceback.

Review 36: anyone who can reach the port could write a full traceback into Steward's log (and,
on the console channel, above the owner's prompt) with every request: `POST /login` with the
console's Origin (a header any non-browser client sets) and a body that does not parse. No
session and no token were needed; the refusals of reviews 63 and 79 are throttled, this was not.
A signed-in form failed the same way."""

from __future__ import annotations

import logging

import pytest
from harness import OWNER
from test_web_security import Web, web  # noqa: F401

MULTIPART = "multipart/form-data; boundary=zz"
BAD = [
    ({"Content-Type": "multipart/form-data"}, b"x"),  # no boundary: ValueError
    ({"Content-Type": MULTIPART}, b"garbage"),  # no part: ValueError
    ({"Content-Type": "application/x-www-form-urlencoded; charset=nope"}, b"token=a"),  # Lookup
    (
        {"Content-Type": MULTIPART},
        b'--zz\r\nContent-Disposition: form-data; name="token"\r\n'
        b"Content-Transfer-Encoding: bogus\r\n\r\nv\r\n--zz--\r\n",
    ),  # an unknown transfer encoding: RuntimeError
]


async def _post_all(
    web: Web,  # noqa: F811
    path: str,
    cookie: str | None,
    rounds: int,
) -> list[int]:
    statuses = []
    for _ in range(rounds):
        for headers, body in BAD:
            response, text = await web.request(
                "POST", path, cookie=cookie, headers={**web.origin(), **headers}, data=body
            )
            statuses.append(response.status)
            assert "Something went wrong" not in text
    return statuses


async def test_malformed_forms_are_refused_without_a_traceback_each(
    web: Web,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    anonymous = await _post_all(web, "/login", None, rounds=25)
    assert set(anonymous) == {400}, sorted(set(anonymous))
    cookie = await web.login()
    signed_in = await _post_all(web, "/goals/add", cookie, rounds=5)
    assert set(signed_in) == {400}, sorted(set(signed_in))
    tracebacks = [r for r in caplog.records if r.exc_info]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert tracebacks == [] and errors == []
    said = [r for r in caplog.records if "could not be read" in r.getMessage()]
    assert 1 <= len(said) <= 2, [r.getMessage() for r in said]  # 120 requests, throttled
    # and the console still works: a good form after the bad ones
    token = await web.csrf(cookie)
    added, _ = await web.request(
        "POST",
        "/goals/add",
        cookie=cookie,
        headers=web.origin(),
        data={"title": "Run", "csrf": token},
    )
    assert added.status in (200, 303)
    stores = web.h.steward.stores
    owner = await stores.people.resolve(OWNER)
    assert owner is not None
    assert [g.title for g in await stores.goals.active(owner.id)] == ["Run"]
