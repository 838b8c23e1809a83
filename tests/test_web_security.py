"""The web console's perimeter, over plain HTTP against a real Steward (issue 16).

A real core (`running_steward`), the real HTTP server on a free loopback port and the console
mounted as `steward run` mounts it; requests are made with aiohttp's client, as an attacker's
script would make them. The browser cases are in test_web_browser.py.

(Over 400 lines: one perimeter, attacked from every side against the same running server.)
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.anthropic import FakeAnthropic
from harness import OWNER, Harness, running_steward
from trust_world import instruction, obedient_model

from agent.types import Address, ChatKind, IncomingMessage
from bot.http import HttpServer
from bot.web.serve import start_console
from memory.clock import FrozenClock
from memory.people import Identity

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/login\?token=[A-Za-z0-9_-]+)")
APPROVER = Identity("test", "bob")
STRANGER = Identity("test", "mallory")
PAGES = ("/", "/approvals", "/activity", "/memory", "/goals", "/usage", "/status")


@dataclass
class Web:
    h: Harness
    base: str
    clock: FrozenClock
    http: HttpServer
    cookies: dict[str, str] = field(default_factory=dict)

    async def link(self, sender: Identity = OWNER, chat: str = "c1") -> str:
        reply = await self.h.say("/web", sender=sender, chat=chat)
        found = LINK.search(reply)
        assert found, reply
        return found.group(1)

    async def request(
        self,
        method: str,
        path: str,
        *,
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> tuple[aiohttp.ClientResponse, str]:
        url = path if path.startswith("http") else self.base + path
        sent = dict(headers or {})
        if cookie is not None:
            sent["Cookie"] = f"steward_session={cookie}"
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client,
            client.request(method, url, headers=sent, data=data, allow_redirects=False) as resp,
        ):
            return resp, await resp.text()

    async def open_link(
        self, link: str, headers: dict[str, str] | None = None
    ) -> tuple[aiohttp.ClientResponse, str]:
        """What a person does: open the link, then press the page's button (a POST)."""
        page, html = await self.request("GET", link, headers=headers)
        if page.status != 200:
            return page, html
        token = re.search(r'name="token" value="([^"]+)"', html)
        assert token, html[:500]
        action = link.split("?", 1)[0]
        origin = {"Origin": self.base, **(headers or {})}
        return await self.request("POST", action, headers=origin, data={"token": token.group(1)})

    async def login(self, sender: Identity = OWNER, chat: str = "c1") -> str:
        response, _ = await self.open_link(await self.link(sender, chat))
        assert response.status == 303
        return response.cookies["steward_session"].value

    async def csrf(self, cookie: str, path: str = "/approvals") -> str:
        _, html = await self.request("GET", path, cookie=cookie)
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, html[:500]
        return found.group(1)

    def origin(self) -> dict[str, str]:
        return {"Origin": self.base}


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    clock = FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    async with FakeAnthropic() as model:
        model.on_request(obedient_model)  # answers "ok", or carries out a `DO {...}` order
        async with running_steward(
            tmp_path / "data", model.base_url, clock=clock, STEWARD_APPROVERS=str(APPROVER)
        ) as h:
            await h.steward.stores.people.admit(APPROVER, "Bob")
            http = HttpServer("127.0.0.1", 0)
            console = await start_console(h.steward, http, [h.channel])
            assert console is not None
            try:
                yield Web(h, http.url, clock, http)
            finally:
                await http.stop()


async def test_anonymous_refusals_cannot_fill_the_audit_log(web: Web) -> None:
    """Review 63: any page the owner opens can POST to /login; each refusal was a chained
    audit event (350 in 1.3 s buried the activity page). Now one event a minute per kind,
    counting the refusals since the last one."""
    audit = web.h.steward.stores.audit
    before = len(await audit.recent(500))
    for _ in range(30):
        foreign, _ = await web.request(
            "POST", "/login", headers={"Origin": "https://evil.example"}, data={"token": "x"}
        )
        guess, _ = await web.request(
            "POST", "/login", headers=web.origin(), data={"token": "guessed-token"}
        )
        assert foreign.status == guess.status == 403
    events = (await audit.recent(500))[: len(await audit.recent(500)) - before]
    assert sorted(e.kind for e in events) == ["web.login_refused", "web.origin_refused"]
    assert all(e.detail["count"] == 1 for e in events)
    web.clock.advance(timedelta(seconds=61))
    await web.request("POST", "/login", headers={"Origin": "https://evil.example"}, data={})
    [latest] = await audit.recent(1)
    assert latest.kind == "web.origin_refused" and latest.detail["count"] == 30  # none lost
    assert latest.detail["first_at"].startswith("2026-12-01T09:00")

    # a real link used twice is still audited each time, with whose it was
    link = await web.link()
    assert (await web.open_link(link))[0].status == 303
    token = link.split("token=", 1)[1]
    again, _ = await web.request("POST", "/login", headers=web.origin(), data={"token": token})
    assert again.status == 403
    [used] = await audit.recent(1, kind="web.login_refused")
    assert used.actor == str(OWNER) and "count" not in used.detail


async def test_a_burst_of_refusals_then_silence_is_counted_without_another(web: Web) -> None:
    """Review 65: the count held back waited for the next refusal of its kind, days later or
    never; it is written once the minute is over."""
    refusals = web.http._fallback.__self__.refusals  # type: ignore[union-attr]
    refusals.flush_after = 0.3  # the minute, shortened
    for _ in range(5):
        await web.request("POST", "/login", headers={"Origin": "https://evil.example"}, data={})
    await asyncio.sleep(1.0)
    events = await web.h.steward.stores.audit.recent(10, kind="web.origin_refused")
    assert sorted(e.detail["count"] for e in events) == [1, 4]


async def test_a_link_signs_in_once_and_leaves_no_token_in_the_url(web: Web) -> None:
    link = await web.link()
    # a link preview or a mail scanner fetching it signs nobody in and spends nothing
    for method in ("GET", "HEAD", "GET"):
        preview, html = await web.request(method, link)
        assert preview.status == 200 and "steward_session" not in preview.cookies
    assert "Sign in" in html
    token = link.split("token=", 1)[1]
    # the button's POST must come from the console's own page
    foreign, _ = await web.request(
        "POST", "/login", headers={"Origin": "https://evil.example"}, data={"token": token}
    )
    bare, _ = await web.request("POST", "/login", data={"token": token})
    assert foreign.status == bare.status == 403 and "steward_session" not in bare.cookies
    response, _ = await web.open_link(link)
    assert response.status == 303
    assert "token" not in response.headers["Location"]
    cookie = response.cookies["steward_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain http on loopback; behind https it is Secure
    for path in PAGES:
        page, html = await web.request("GET", path, cookie=cookie.value)
        assert page.status == 200, (path, html[:300])
        assert page.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
        # nothing from elsewhere: every src and href stays on this server
        for url in re.findall(r'(?:src|href|action)="([^"]+)"', html):
            assert url.startswith(("/", "#")), (path, url)
    again, html = await web.request("GET", link)
    assert again.status == 403 and "already used" in html
    replayed, html = await web.request(
        "POST", "/login", headers=web.origin(), data={"token": token}
    )
    assert replayed.status == 403 and "already used" in html
    kinds = [e.kind for e in await web.h.steward.stores.audit.recent(50)]
    assert "web.login" in kinds and "web.login_refused" in kinds


async def test_an_expired_or_made_up_link_opens_nothing(web: Web) -> None:
    link = await web.link()
    web.clock.advance(timedelta(minutes=10, seconds=1))
    response, html = await web.request("GET", link)
    assert response.status == 403 and "expired" in html
    assert "steward_session" not in response.cookies
    late, html = await web.request("POST", "/login", headers=web.origin(), data={"token": link})
    assert late.status == 403 and "not a login link" in html  # the whole link is no token
    late, html = await web.request(
        "POST", "/login", headers=web.origin(), data={"token": link.split("token=", 1)[1]}
    )
    assert late.status == 403 and "expired" in html
    forged, html = await web.request("GET", "/login?token=" + "A" * 43)
    assert forged.status == 403 and "not a login link" in html
    blank, _ = await web.request("GET", "/approvals")
    assert blank.status == 401


async def test_only_the_owner_and_approvers_get_links_and_approvers_see_approvals_only(
    web: Web,
) -> None:
    await web.h.steward.stores.people.admit(Identity("test", "carol"), "Carol")
    reply = await web.h.say("/web", sender=Identity("test", "carol"), chat="c3")
    assert "Only the owner and approvers" in reply and "token" not in reply
    stranger = await web.h.say("/web", sender=STRANGER, chat="c4")
    assert "token" not in stranger
    cookie = await web.login(APPROVER, chat="c2")
    ok, _ = await web.request("GET", "/approvals", cookie=cookie)
    assert ok.status == 200
    for path in ("/activity", "/memory", "/goals", "/usage", "/status"):
        refused, _ = await web.request("GET", path, cookie=cookie)
        assert refused.status == 403, path
    home, _ = await web.request("GET", "/", cookie=cookie)
    assert home.status == 303 and home.headers["Location"] == "/approvals"
    # an approver sees (and decides) the requests of their own turns, not the owner's
    # (a message, not the workspace: an approver never grants the owner's own things)
    send = "send_message"
    await web.h.say(instruction(send, {"channel": "test", "chat": "owners", "text": "o"}))
    await web.h.say(
        instruction(send, {"channel": "test", "chat": "bobs", "text": "b"}),
        sender=APPROVER,
        chat="c2",
    )
    pending = {a.user_id: a for a in await web.h.steward.stores.approvals.pending()}
    owner_request, bob_request = pending[1], pending[2]
    _, listed = await web.request("GET", "/approvals/list", cookie=cookie)
    assert bob_request.id in listed and owner_request.id not in listed
    token = await web.csrf(cookie)
    for request in (owner_request, bob_request):
        answer, _ = await web.request(
            "POST",
            f"/approvals/{request.id}",
            cookie=cookie,
            headers=web.origin(),
            data={"csrf": token, "choice": "approve"},
        )
        assert answer.status == 303
    ran = [
        e.detail.get("approval")
        for e in await web.h.steward.stores.audit.recent(50, kind="tool.ran")
    ]
    assert bob_request.id in ran and owner_request.id not in ran
    decided = await web.h.steward.stores.approvals.get(bob_request.id)
    assert decided is not None and decided.decided_by == str(APPROVER)
    # taken off the approvers: the session stops working at once
    await web.h.steward.stores.people.revoke(APPROVER)
    gone, _ = await web.request("GET", "/approvals", cookie=cookie)
    assert gone.status == 401


async def test_a_post_needs_the_csrf_token_and_the_consoles_own_origin(web: Web) -> None:
    cookie = await web.login()
    token = await web.csrf(cookie)
    path = "/goals/add"
    no_token, _ = await web.request(
        "POST", path, cookie=cookie, headers=web.origin(), data={"title": "x"}
    )
    assert no_token.status == 403
    wrong, _ = await web.request(
        "POST", path, cookie=cookie, headers=web.origin(), data={"title": "x", "csrf": "nope"}
    )
    assert wrong.status == 403
    foreign, _ = await web.request(
        "POST",
        path,
        cookie=cookie,
        headers={"Origin": "http://evil.example"},
        data={"title": "x", "csrf": token},
    )
    assert foreign.status == 403
    no_origin, _ = await web.request(
        "POST", path, cookie=cookie, data={"title": "x", "csrf": token}
    )
    assert no_origin.status == 403
    as_file = aiohttp.FormData()  # R168: the token sent as a file part was a 500
    as_file.add_field("csrf", token.encode(), filename="x.txt")
    as_file.add_field("title", "x")
    file_part, _ = await web.request(
        "POST", path, cookie=cookie, headers=web.origin(), data=as_file
    )
    assert file_part.status == 403
    assert await web.h.steward.stores.goals.all(1) == []
    done, _ = await web.request(
        "POST", path, cookie=cookie, headers=web.origin(), data={"title": "Run 10k", "csrf": token}
    )
    assert done.status == 303
    [goal] = await web.h.steward.stores.goals.all(1)
    assert goal.title == "Run 10k"
    kinds = {e.kind: e for e in await web.h.steward.stores.audit.recent(50)}
    assert "web.csrf_refused" in kinds and "web.origin_refused" in kinds
    assert kinds["web.goal_added"].detail["session"].startswith("web-session:")


async def test_a_name_cannot_reorder_what_a_card_says(web: Web) -> None:
    """R168: a guest named "Carol\u202e)nruT s'renwO(\u202c" showed as "asked by Carol(Owner's
    Turn)" on the console's card and in the turn's story; chat's cards escape it."""
    guest = Identity("test", "carol")
    await web.h.steward.stores.people.admit(guest, "Carol\u202e)nruT s'renwO(\u202c")
    await web.h.say(instruction("shell", {"command": "echo hi"}), sender=guest, chat="c3")
    [pending] = await web.h.steward.stores.approvals.pending()
    cookie = await web.login()
    _, card = await web.request("GET", "/approvals/list", cookie=cookie)
    _, story = await web.request("GET", f"/activity/turn/{pending.turn_id}", cookie=cookie)
    for page in (card, story):
        assert "Carol" in page and not re.search("[\u202a-\u202e\u2066-\u2069]", page)


async def test_a_refused_forms_words_come_back_as_typed(web: Web) -> None:
    """R172: a refused reminder written in Hebrew (a phone keyboard's isolates around it) came
    back in its field as `\\u2067…`, and sent again so it was saved with the escapes."""
    import html

    cookie = await web.login()
    token = await web.csrf(cookie)
    words = "\u2067\u05d0\u05de\u05d0\u2069 call"  # no time: refused, the field refilled
    await web.request(
        "POST", "/reminders/add", cookie=cookie, headers=web.origin(),
        data={"words": words, "csrf": token},
    )  # fmt: skip
    _, page = await web.request("GET", "/goals", cookie=cookie)
    found = re.search(r'name="words" value="([^"]*)"', page)
    assert found and html.unescape(found[1]) == words


async def test_a_foreign_host_is_refused_even_with_a_valid_session(web: Web) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 reaches the port with its own Host."""
    cookie = await web.login()
    port = web.base.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        response, _ = await web.request("GET", "/approvals", cookie=cookie, headers={"Host": host})
        assert response.status == 421, host
    fine, _ = await web.request(
        "GET", "/approvals", cookie=cookie, headers={"Host": f"localhost:{port}"}
    )
    assert fine.status == 200


async def test_web_logout_ends_every_session_and_unused_links(web: Web) -> None:
    first, second = await web.login(), await web.login()
    unused = await web.link()
    reply = await web.h.say("/web logout")
    assert "Ended every" in reply
    for cookie in (first, second):
        response, _ = await web.request("GET", "/", cookie=cookie)
        assert response.status == 401
    response, _ = await web.request("GET", unused)
    assert response.status == 403


async def test_signed_in_a_used_link_leads_home_and_ending_sessions_says_so(web: Web) -> None:
    """A used link opened again, or Back to the sign-in page, said "This link does not work"
    with no way back in; "End every session" landed on a bare "Sign in" (R138)."""
    link = await web.link()
    response, _ = await web.open_link(link)
    cookie = response.cookies["steward_session"].value
    for path in (link, "/login"):
        again, _ = await web.request("GET", path, cookie=cookie)
        assert (again.status, again.headers.get("Location")) == (303, "/"), path
    signed_out, html = await web.request("GET", link)  # without the session: refused, as ever
    assert signed_out.status == 403
    token = await web.csrf(cookie, "/status")
    ended, html = await web.request(
        "POST", "/status/sessions/end", cookie=cookie, headers=web.origin(), data={"csrf": token}
    )
    assert ended.status == 200 and "Ended 1 session, this one included." in html


async def test_the_link_is_refused_in_a_group_and_when_the_console_is_off(tmp_path: Path) -> None:
    async with running_steward(tmp_path / "data", None) as h:
        group = IncomingMessage(
            sender=OWNER, address=Address("test", "g1"), text="/web", chat_kind=ChatKind.GROUP
        )
        await h.router.dispatch(group)
        [answer] = h.channel.texts("g1")
        assert "private chat" in answer and "token" not in answer
    async with running_steward(tmp_path / "data", None, STEWARD_WEB="off") as h:
        assert "STEWARD_WEB=off" in await h.say("/web")
        http = HttpServer("127.0.0.1", 0)
        assert await start_console(h.steward, http, [h.channel]) is None
        assert not http.running


async def test_a_console_that_could_not_listen_gives_no_link(tmp_path: Path) -> None:
    """R179: with its port held by another program, the console did not start, yet /web
    handed out a link to that port (the token to whatever listened there), or to the port of
    the run before. /web says why instead; a console started again gives links again."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        async with running_steward(tmp_path / "data", None) as h:
            http = HttpServer("127.0.0.1", port)
            assert await start_console(h.steward, http, [h.channel]) is None
            said = await h.say("/web")
            assert "The web console is not running" in said and "token" not in said
            http = HttpServer("127.0.0.1", 0)
            assert await start_console(h.steward, http, [h.channel]) is not None
            try:
                assert "token=" in await h.say("/web")
            finally:
                await http.stop()


def test_steward_run_serves_the_console_and_web_link_prints_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`steward run` on the console channel starts the HTTP server for the console alone;
    `steward web-link` (run here in-process) prints a link that signs in."""
    import socket
    import time
    import urllib.parse
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "STEWARD_DATA_DIR": str(tmp_path / "data"),
        "STEWARD_HTTP_PORT": str(port),
        "STEWARD_EMBEDDER": "none",
    }
    steward = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        cwd=tmp_path,
        text=True,
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/approvals") as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                assert steward.poll() is None, steward.communicate()[1][-2000:]
                assert time.monotonic() < deadline, "the console never came up"
                time.sleep(0.2)
                continue
            break
        assert status == 401  # served, and not signed in
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from bot.cli import main

        assert main(["web-link"]) == 0
        printed = capsys.readouterr()
        link = printed.out.strip()
        assert link.startswith(f"http://127.0.0.1:{port}/login?token=")
        assert "not running" not in printed.err
        with urllib.request.urlopen(link) as page:
            token = re.search(r'name="token" value="([^"]+)"', page.read().decode())
        assert token
        press = urllib.request.Request(
            f"http://127.0.0.1:{port}/login",
            data=urllib.parse.urlencode({"token": token.group(1)}).encode(),
            headers={"Origin": f"http://127.0.0.1:{port}"},
        )
        try:
            urllib.request.build_opener(NoRedirect).open(press)
        except urllib.error.HTTPError as exc:
            assert exc.code == 303 and "steward_session=" in exc.headers["Set-Cookie"]
        else:
            raise AssertionError("the link did not redirect")
    finally:
        assert steward.stdin is not None
        steward.stdin.close()
        steward.wait(timeout=30)
    # stopped: the link is still printed, and why it does not open yet is said (review 80)
    assert main(["web-link"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"http://127.0.0.1:{port}/login?token=")
    assert "Steward is not running" in printed.err


async def test_usage_charts_add_up_by_day_and_kind(web: Web) -> None:
    """Turns on three days (UTC), two kinds, and timed model calls, as the usage page draws
    them: one stacked bar per day and kind, the cache share, today's budget, latency."""
    rows = [
        ("2026-11-29T10:00:00.000000+00:00", "chat", 1000, 200, 800, 0, 0.010),
        ("2026-11-29T11:00:00.000000+00:00", "briefing", 500, 100, 0, 400, 0.005),
        ("2026-11-30T10:00:00.000000+00:00", "chat", 2000, 300, 0, 0, 0.020),
        ("2026-12-01T08:00:00.000000+00:00", "chat", 100, 50, 900, 0, 0.001),
    ]
    for at, kind, i, o, cr, cc, cost in rows:
        web.h.edit_database(
            "INSERT INTO turns (kind, status, model, input_tokens, output_tokens,"
            " cache_read_input_tokens, cache_creation_input_tokens, cost_usd, started_at)"
            " VALUES (?, 'completed', 'm', ?, ?, ?, ?, ?, ?)",
            (kind, i, o, cr, cc, cost, at),
        )
    for at, ms in (("2026-11-30T10:00:01", 800), ("2026-11-30T10:00:02", 1200)):
        web.h.edit_database(
            "INSERT INTO model_calls (at, model, latency_ms, ok) VALUES (?, 'm', ?, 1)",
            (at + ".000000+00:00", ms),
        )
    cookie = await web.login()
    response, html = await web.request("GET", "/usage", cookie=cookie)
    assert response.status == 200
    titles = re.findall(r"<rect [^>]*><title>([^<]+)</title>", html)
    assert "2026-11-29 chat: 2,000" in titles
    assert "2026-11-29 briefing: 1,000" in titles
    assert "2026-11-30 chat: 2,300" in titles
    assert "2026-12-01 chat: 1,050" in titles
    assert "2026-11-29 chat: $0.0100" in titles
    # cache read / (input + cache read + cache write): 800 / 2700 on the 29th
    assert "2026-11-29 cache read: 30%" in html
    assert "2026-11-30 p50: 1,000 ms" in html  # the median, as the header says it (R138)
    assert "2026-11-30 p95: 1,180 ms" in html
    assert "1,050 of 300,000 tokens today" in html


async def test_status_reads_mcp_servers_duck_typed(web: Web) -> None:
    from bot.web.pages.status import mcp_rows

    @dataclass
    class Server:
        name: str
        status: str
        tools: tuple[str, ...]
        error: str | None = None

    class Supervisor:
        def states(self) -> list[Server]:
            return [Server("time", "up", ("now", "convert")), Server("files", "down", (), "gone")]

    rows = mcp_rows(Supervisor())
    assert [(r.name, r.state) for r in rows] == [("time", "up"), ("files", "down")]
    assert rows[0].detail == "2 tools" and "gone" in rows[1].detail
    assert mcp_rows(None) == [] and mcp_rows(object()) == []
    cookie = await web.login()
    _, html = await web.request("GET", "/status", cookie=cookie)
    assert "not configured" in html  # no MCP servers in this Steward
    assert str(web.h.settings.data_dir.resolve()) in html


async def test_memory_correct_export_and_import(web: Web) -> None:
    assert "Remembered #1" in await web.h.say("/remember I live in Paris")
    cookie = await web.login()
    token = await web.csrf(cookie, "/memory")
    response, _ = await web.request(
        "POST",
        "/memory/1/correct",
        cookie=cookie,
        headers=web.origin(),
        data={"csrf": token, "text": "I live in Berlin"},
    )
    assert response.status == 303
    _, html = await web.request("GET", "/memory/2", cookie=cookie)
    assert "I live in Berlin" in html and "Replaces: #1 I live in Paris" in html
    _, html = await web.request("GET", "/memory/1", cookie=cookie)
    assert "Superseded by" in html
    shown = await web.h.say("/memory show 1")
    assert "Superseded" in shown and "Berlin" in shown
    exported, body = await web.request("GET", "/memory-export", cookie=cookie)
    assert exported.status == 200 and "attachment" in exported.headers["Content-Disposition"]
    lines = body.splitlines()
    assert len(lines) == 2 and "Berlin" in lines[1]
    await web.request(
        "POST", "/memory/2/forget", cookie=cookie, headers=web.origin(), data={"csrf": token}
    )
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("file", body.encode(), filename="m.jsonl", content_type="application/x-ndjson")
    imported, _ = await web.request(
        "POST", "/memory-import", cookie=cookie, headers=web.origin(), data=form
    )
    assert imported.status == 303
    _, html = await web.request("GET", "/memory?q=Berlin", cookie=cookie)
    assert "I live in Berlin" in html and "1 imported, 1 already there" in html
    kinds = [e.kind for e in await web.h.steward.stores.audit.recent(30)]
    assert {"web.memory_corrected", "web.memory_exported", "memory.imported"} <= set(kinds)


async def _import(web: Web, cookie: str, token: str, raw: bytes) -> str:
    """The flash the console's import answers with for a file of these bytes."""
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("file", raw, filename="m.jsonl", content_type="application/x-ndjson")
    response, _ = await web.request(
        "POST", "/memory-import", cookie=cookie, headers=web.origin(), data=form
    )
    assert response.status == 303
    _, html = await web.request("GET", response.headers["Location"], cookie=cookie)
    return html


async def test_an_import_is_read_as_utf8_strictly_and_keeps_one_fact_a_subject(web: Web) -> None:
    """R110: a file re-saved as Windows-1252 went in as "Caf\ufffd Zo\ufffd" without a word,
    one saved with a BOM was refused whole, and an older "home city" imported stayed in force
    beside the current one, both in every turn."""
    from memory.longterm import Kind, NewMemory

    assert web.h.steward.memory is not None
    await web.h.steward.memory.remember(
        NewMemory(user_id=1, text="Home city is Berlin", kind=Kind.FACT, subject="home city")
    )
    cookie = await web.login()
    token = await web.csrf(cookie, "/memory")
    _, body = await web.request("GET", "/memory-export", cookie=cookie)
    record = json.loads(body.splitlines()[0])
    older = {**record, "id": 90, "text": "Home city is Paris, Café Zoë"}
    older["created_at"] = "2025-01-01T09:00:00+00:00"
    line = json.dumps(older, ensure_ascii=False) + "\n"
    said = await _import(web, cookie, token, line.encode("cp1252"))
    assert "not UTF-8" in said and "nothing was imported" in said
    said = await _import(web, cookie, token, b"\xef\xbb\xbf" + line.encode())
    assert "1 imported" in said
    in_force = [m.text for m in await web.h.memories() if m.subject == "home city" and m.active]
    assert in_force == ["Home city is Berlin"]
    [paris] = [m for m in await web.h.memories() if "Paris" in m.text]
    assert paris.text.endswith("Café Zoë") and paris.superseded_by is not None


async def test_a_correction_refused_keeps_what_was_typed(web: Web) -> None:
    """R110: a correction over 4,000 characters came back with the old text in the box, and
    the box had no maxlength to say so before."""
    assert "Remembered #1" in await web.h.say("/remember I live in Paris")
    cookie = await web.login()
    token = await web.csrf(cookie, "/memory/1")
    _, html = await web.request("GET", "/memory/1", cookie=cookie)
    assert 'maxlength="4000"' in html
    typed = "I live in Berlin now. " + "Details. " * 460
    response, html = await web.request(
        "POST",
        "/memory/1/correct",
        cookie=cookie,
        headers=web.origin(),
        data={"csrf": token, "text": typed},
    )
    assert response.status == 422 and "at most 4000 characters" in html
    assert typed[:200] in html


async def test_the_consoles_own_export_imports_and_a_bad_file_is_one_line(web: Web) -> None:
    """A person's display name with U+2028 in it made the console's export unreadable by its
    own import (`splitlines` splits there); a deeply nested line was a 500 and a traceback."""
    eve = Identity("test", "eve")
    await web.h.steward.stores.people.admit(eve, "Eve\u2028")
    assert "Remembered" in await web.h.say("/remember I live in Paris")
    assert "Remembered" in await web.h.say("/remember I like tea", sender=eve, chat="e1")
    cookie = await web.login()
    token = await web.csrf(cookie, "/memory")

    async def upload(body: str) -> str:
        form = aiohttp.FormData()
        form.add_field("csrf", token)
        form.add_field("file", body.encode(), filename="m.jsonl")
        response, _ = await web.request(
            "POST", "/memory-import", cookie=cookie, headers=web.origin(), data=form
        )
        assert response.status == 303
        _, html = await web.request("GET", "/memory", cookie=cookie)
        return html

    _, body = await web.request("GET", "/memory-export", cookie=cookie)
    assert body.count("\n") == 2 and "\u2028" in body
    html = await upload(body)
    assert "is not JSON" not in html and "2 already there" in html
    html = await upload("[" * 100_000 + "]" * 100_000 + "\n")
    assert "Line 1 is not JSON; nothing was imported." in html


async def test_a_correction_from_a_stale_page_or_to_known_text_says_what_happened(
    web: Web,
) -> None:
    """Correcting #1 again from a page opened before its first correction left two facts in
    force ("Berlin" and "Rome"); correcting to a text already remembered said "it replaces
    #4" while #4 stayed in force."""
    assert "Remembered #1" in await web.h.say("/remember I live in Paris")
    cookie = await web.login()
    token = await web.csrf(cookie, "/memory")

    async def correct(number: int, text: str) -> str:
        response, _ = await web.request(
            "POST", f"/memory/{number}/correct", cookie=cookie, headers=web.origin(),
            data={"csrf": token, "text": text},
        )  # fmt: skip
        assert response.status == 303
        _, html = await web.request("GET", response.headers["Location"], cookie=cookie)
        return html

    await correct(1, "I live in Berlin")  # #2
    stale = await correct(1, "I live in Rome")
    assert "#1 was already replaced by #2; correct that one." in stale
    live = [m.text for m in await web.h.memories() if m.superseded_by is None]
    assert "I live in Rome" not in live and "I live in Berlin" in live
    await web.h.say("/remember I work at Acme")  # #3
    await web.h.say("/remember I work at Initech")  # #4
    said = await correct(4, "I work at Acme")
    assert "That is already memory #3; #4 is unchanged" in said
    assert "it replaces #4" not in said


async def test_always_approves_and_adds_the_policy_rule_as_chat_does(web: Web) -> None:
    """Always through the console: the same `decide_approval` as `/approve <id> always`."""
    await web.h.say(instruction("shell", {"command": "mkdir made-always"}))
    [pending] = await web.h.steward.stores.approvals.pending()
    cookie = await web.login()
    token = await web.csrf(cookie)
    _, listed = await web.request("GET", "/approvals/list", cookie=cookie)
    assert f'id="approval-{pending.id}"' in listed and "mkdir made-always" in listed

    async def press(choice: str, session: str) -> int:
        response, _ = await web.request(
            "POST",
            f"/approvals/{pending.id}",
            cookie=session,
            headers=web.origin(),
            data={"csrf": token, "choice": choice},
        )
        return response.status

    assert await press("approve", "x" * 43) == 403  # no session: nothing decided
    assert await press("always", cookie) == 303
    assert (web.h.settings.workspace / "made-always").is_dir()
    assert "mkdir" in web.h.settings.policy_path.read_text()
    assert await press("approve", cookie) == 303
    _, html = await web.request("GET", "/approvals", cookie=cookie)
    assert "already executed" in html  # a second press decides nothing
    ran = await web.h.steward.stores.audit.recent(50, kind="tool.ran")
    assert len([e for e in ran if e.subject == "shell"]) == 1
    [changed] = await web.h.steward.stores.audit.recent(5, kind="policy.changed")
    assert changed.actor == "test:owner"


async def test_a_due_date_on_the_web_is_read_as_in_chat(web: Web) -> None:
    """The Goals page read a due date as a moment: "today" was "in the past", and a date was
    due at 09:00 there but at the day's end from /goal due."""
    await web.h.say("hello")
    await web.h.say("/goal add Chat goal")
    await web.h.say("/goal due 1 2027-06-01")
    cookie = await web.login()
    token = await web.csrf(cookie, "/goals")
    for path, fields in (
        ("/goals/add", {"title": "Web goal"}),
        ("/goals/2/due", {"text": "2027-06-01"}),
        ("/goals/add", {"title": "Today's goal"}),
        ("/goals/3/due", {"text": "today"}),
    ):
        response, _ = await web.request(
            "POST", path, cookie=cookie, headers=web.origin(), data={"csrf": token, **fields}
        )
        assert response.status == 303, path
    _, html = await web.request("GET", "/goals", cookie=cookie)
    assert "in the past" not in html
    goals = web.h.steward.stores.goals
    chat, page, today = [(await goals.by_id(i)).due_at for i in (1, 2, 3)]
    assert chat == page and today is not None and "T23:59" in today


async def test_home_names_a_goals_due_day_in_the_owners_zone(web: Web) -> None:
    """Due by the end of 8 December in Los Angeles is 07:59 on the 9th in UTC: Home said the
    9th, the Goals page the 8th (R138)."""
    await web.h.say("/timezone America/Los_Angeles")
    await web.h.say("/goal add File the report")
    await web.h.say("/goal due 1 2026-12-03")
    cookie = await web.login()
    _, html = await web.request("GET", "/", cookie=cookie)
    assert "is due 2026-12-03." in html, html[:2000]


async def test_a_closed_goal_is_reopened_and_a_goal_renamed_on_the_web(web: Web) -> None:
    await web.h.say("hello")
    await web.h.say("/goal add Lern Italian")
    await web.h.say("/goal done 1")
    cookie = await web.login()
    token = await web.csrf(cookie, "/goals")
    _, html = await web.request("GET", "/goals", cookie=cookie)
    assert 'action="/goals/1/reopen"' in html
    for path, fields in (("/goals/1/reopen", {}), ("/goals/1/rename", {"text": "Learn Italian"})):
        response, _ = await web.request(
            "POST", path, cookie=cookie, headers=web.origin(), data={"csrf": token, **fields}
        )
        assert response.status == 303, path
    shown = await web.h.say("/goal show 1")
    assert shown.startswith("#1 Learn Italian\nStatus: active"), shown


async def test_goals_reminders_and_briefing_are_editable(web: Web) -> None:
    await web.h.say("hello")  # the owner's private chat: where reminders and briefings post
    cookie = await web.login()
    token = await web.csrf(cookie, "/goals")

    async def post(path: str, **fields: str) -> None:
        response, _ = await web.request(
            "POST", path, cookie=cookie, headers=web.origin(), data={"csrf": token, **fields}
        )
        assert response.status == 303, path

    await post("/goals/add", title="Learn Italian")
    await post("/goals/1/note", text="Finished lesson 3")
    await post("/goals/1/next", text="Lesson 4")
    await post("/reminders/add", words="tomorrow 9:00 call mom")
    await post("/briefing/time", time="07:30")
    await post("/briefing/topics", topics="climbing, rust")
    await post("/briefing/feeds", url="http://127.0.0.1:9/feed.xml")
    await post("/goals/1/due", text="2027-06-01")
    await post("/goals/1/every", text="weekly")
    await post("/briefing/destination", destination="@mychannel")
    _, html = await web.request("GET", "/goals", cookie=cookie)
    for text in ("Learn Italian", "Finished lesson 3", "Lesson 4", "call mom", "07:30", "climbing"):
        assert text in html, text
    assert "never fetched" in html and "2027-06-01" in html
    # Telegram does not run here: refused as in chat (R138: the page took it, and the
    # briefing went nowhere)
    assert "Telegram is not running here, so I could not post to @mychannel" in html
    assert "telegram chat @mychannel" not in html
    shown = await web.h.say("/goal show 1")
    assert "Check-ins: every" in shown and "2027-06-01" in shown
    await post("/goals/1/every", text="sometimes, maybe")
    _, html = await web.request("GET", "/goals", cookie=cookie)
    assert "Say daily, weekly" in html  # the problem is shown, nothing changed
    assert 'value="sometimes, maybe"' in html  # and what was typed is still there (R138)
    await post("/reminders/add", words="next fridya 9:00 dentist with Dr Who")
    _, html = await web.request("GET", "/goals", cookie=cookie)
    assert 'value="next fridya 9:00 dentist with Dr Who"' in html
    _, html = await web.request("GET", "/goals", cookie=cookie)
    assert "next fridya" not in html  # shown once, with the problem
    assert "call mom" in await web.h.say("/remind list")
    await post("/reminders/1/cancel")
    await post("/goals/1/done")
    assert "No reminders" in await web.h.say("/remind list")
    assert "[done]" in await web.h.say("/goal list all")


@pytest.mark.parametrize(
    "public_url", ["https://steward.example.org/", "https://Steward.example.org:443"]
)
async def test_behind_https_links_use_the_public_url_and_the_cookie_is_secure(
    tmp_path: Path, public_url: str
) -> None:
    """Review 79: a public URL with its default port written out (`:443`) refused every
    request, as browsers leave the port off; signing out did not delete the `__Host-` cookie
    (deleted without `Secure`, which browsers refuse for that prefix)."""
    async with running_steward(tmp_path / "data", None, STEWARD_PUBLIC_URL=public_url) as h:
        http = HttpServer("127.0.0.1", 0)
        assert await start_console(h.steward, http, [h.channel]) is not None
        try:
            reply = await h.say("/web")
            found = re.search(r"(https://steward\.example\.org/login\?token=\S+)", reply)
            assert found, reply
            path = found.group(1).removeprefix("https://steward.example.org")
            proxied = {"Host": "steward.example.org"}  # as a reverse proxy passes it on
            web = Web(h, http.url, FrozenClock(datetime.now(UTC)), http)
            response, _ = await web.open_link(
                path, headers={**proxied, "Origin": "https://steward.example.org"}
            )
            assert response.status == 303
            cookie = response.cookies["__Host-steward_session"]
            assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
            assert "Domain" not in response.headers["Set-Cookie"]
            # the console's origin is now the public one: the loopback origin is foreign
            headers = {**proxied, "Cookie": f"__Host-steward_session={cookie.value}"}
            page, html = await web.request("GET", "/goals", headers=headers)
            assert page.status == 200
            token = re.search(r'name="csrf" value="([^"]+)"', html)
            assert token
            data = {"csrf": token.group(1), "title": "x"}
            refused, _ = await web.request(
                "POST", "/goals/add", headers={**headers, "Origin": http.url}, data=data
            )
            assert refused.status == 403
            origin = {**headers, "Origin": "https://steward.example.org"}
            accepted, _ = await web.request("POST", "/goals/add", headers=origin, data=data)
            assert accepted.status == 303
            out, _ = await web.request(
                "POST", "/logout", headers=origin, data={"csrf": token.group(1)}
            )
            deleted = out.headers["Set-Cookie"]
            assert deleted.startswith("__Host-steward_session=") and "Max-Age=0" in deleted
            assert "Secure" in deleted and "Path=/" in deleted
        finally:
            await http.stop()


async def test_activity_filters_tells_a_turns_story_and_exports(web: Web) -> None:
    await web.h.say(instruction("shell", {"command": "touch story-file"}))
    [pending] = await web.h.steward.stores.approvals.pending()
    await web.h.say(f"/deny {pending.id}")
    cookie = await web.login()

    async def rows(query: str) -> list[str]:
        response, html = await web.request("GET", "/activity" + query, cookie=cookie)
        assert response.status == 200
        return re.findall(r"<tr>\s*<td>\d+</td><td>[^<]+</td><td>([^<]+)</td>", html)

    everything = await rows("")
    assert {"tool.requested", "approval.requested", "approval.denied"} <= set(everything)
    assert set(await rows("?kind=approval.")) <= {
        k for k in everything if k.startswith("approval.")
    }
    assert set(await rows("?decision=ask")) == {"tool.requested"}
    assert "approval.denied" in await rows("?decision=denied")
    assert "tool.requested" in await rows("?tool=shell")
    assert await rows("?tool=web_fetch") == []
    # a chat's tool calls too, not only what was sent there (R138)
    assert "tool.requested" in await rows("?chat=test:c1")
    assert "tool.requested" not in await rows("?chat=test:elsewhere")
    _, html = await web.request("GET", "/activity", cookie=cookie)
    assert "Audit chain verified" in html
    _, story = await web.request("GET", f"/activity/turn/{pending.turn_id}", cookie=cookie)
    assert "touch story-file" in story  # the trigger and the tool call
    assert "calls shell" in story and "the owner denied this shell call" in story
    assert "approval.denied" in story and "tool.requested" in story
    assert "trusted</span> nothing from outside" in story
    assert "sent" in story
    missing, _ = await web.request("GET", "/activity/turn/9999", cookie=cookie)
    assert missing.status == 404
    huge = "9" * 20  # more than SQLite's integer holds: not found, never a server error
    for path in (f"/activity/turn/{huge}", f"/memory/{huge}", f"/activity?before={huge}"):
        answered, _ = await web.request("GET", path, cookie=cookie)
        assert answered.status in (200, 404), (path, answered.status)
    exported, body = await web.request("GET", "/activity/export", cookie=cookie)
    assert exported.status == 200
    assert exported.headers["Content-Security-Policy"].startswith("default-src 'none'")
    lines = [json.loads(line) for line in body.splitlines()]
    assert [e["id"] for e in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["kind"] == "web.audit_exported"
    assert lines[-1]["detail"]["session"].startswith("web-session:")


async def test_health_and_metrics_answer_only_steward_s_own_host_names(web: Web) -> None:
    """Review 63: /healthz and /metrics were served before the console's host check, so a
    DNS-rebinding page (a loopback peer, no forwarding header) could read them."""
    rebound, _ = await web.request("GET", "/metrics", headers={"Host": "rebind.evil.example"})
    assert rebound.status == 421
    own, body = await web.request("GET", "/metrics")
    assert own.status == 200 and '"embedder"' in body
    # a health probe by another name (a container's, a load balancer's) learns it is alive,
    # and nothing else (review 65: a 421 broke such probes)
    probe, body = await web.request("GET", "/healthz", headers={"Host": "steward:8080"})
    assert probe.status == 200 and json.loads(body) == {"ok": True}
    own, body = await web.request("GET", "/healthz")
    assert own.status == 200 and "tasks" in json.loads(body)


async def test_a_form_sent_after_the_session_ended_says_it_was_not_saved(web: Web) -> None:
    """R110: a correction posted after the session ended got a bare "Not signed in." with no
    word of what was lost or how to sign in again."""
    assert "Remembered #1" in await web.h.say("/remember I live in Paris")
    response, html = await web.request(
        "POST", "/memory/1/correct", headers=web.origin(), data={"text": "I live in Berlin"}
    )
    assert response.status == 403
    assert "not saved" in html and "<code>/web</code>" in html and "Back button" in html
    assert [m.text for m in await web.h.memories()] == ["I live in Paris"]


async def test_a_search_shows_more_of_its_results_on_request(web: Web) -> None:
    """R110: a word common to many memories showed the first 20, with no way to see more."""
    assert web.h.steward.memory is not None
    from memory.longterm import Kind, NewMemory

    for n in range(30):
        await web.h.steward.memory.remember(
            NewMemory(user_id=1, text=f"Swam in the lake, lap {n}", kind=Kind.EPISODE)
        )
    cookie = await web.login()
    _, html = await web.request("GET", "/memory?q=lake", cookie=cookie)
    assert html.count('class="card memory') == 20
    more = re.search(r'<a href="/memory\?([^"]+)" id="more-results">', html)
    assert more is not None
    _, html = await web.request("GET", "/memory?" + more[1].replace("&amp;", "&"), cookie=cookie)
    assert html.count('class="card memory') == 30 and 'id="more-results"' not in html


async def test_briefing_topics_from_the_console_are_capped_too(web: Web) -> None:
    """The 500-character cap was on `/briefing topics` alone: the console's form saved 10,017
    characters, to ride in every briefing (R125)."""
    await web.h.say("hello")
    cookie = await web.login()
    token = await web.csrf(cookie, "/goals")
    response, _ = await web.request(
        "POST", "/briefing/topics", cookie=cookie, headers=web.origin(),
        data={"csrf": token, "topics": "y" * 10_017},
    )  # fmt: skip
    assert response.status == 303
    owner = await web.h.steward.stores.people.owner()
    assert owner is not None
    assert not (await web.h.steward.stores.feeds.prefs(owner.id)).topics


async def test_status_and_home_say_when_the_mailbox_refuses_the_login(tmp_path: Path) -> None:
    """Chat's /status named the mailbox and the shell; the console's Status page neither, and
    Home said nothing of a login refused (R138)."""
    from agent.mail.service import LOGIN_REFUSED

    async with FakeAnthropic() as model:
        model.on_request(obedient_model)
        async with running_steward(
            tmp_path / "data",
            model.base_url,
            EMAIL_IMAP_URL="imaps://me%40example.org@127.0.0.1:9",
            EMAIL_FROM="Me <me@example.org>",
            EMAIL_PASSWORD="x",
        ) as h:
            http = HttpServer("127.0.0.1", 0)
            await start_console(h.steward, http, [h.channel])
            try:
                web = Web(h, http.url, FrozenClock(datetime(2026, 12, 1, tzinfo=UTC)), http)
                await h.steward.stores.state.set(LOGIN_REFUSED, "1")
                cookie = await web.login()
                _, status = await web.request("GET", "/status", cookie=cookie)
                assert "Mail" in status and "refused" in status and "me@example.org" in status
                assert "Shell" in status
                _, home = await web.request("GET", "/", cookie=cookie)
                assert "The mailbox refused Steward&#39;s login" in home or (
                    "The mailbox refused Steward's login" in home
                )
            finally:
                await http.stop()
