"""DNS rebinding: a name that answers a public address when it is checked and a loopback one a
moment later, when the connection is made, must not reach the machine's own services.

The resolver is the boundary faked here: `socket.getaddrinfo` answers for one made-up name as
an attacker's DNS server would (a short TTL, a different answer each time); every other name
resolves as usual, and the conftest guard refuses any connection off 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trust_world import instruction, trust_world

from agent.errors import ToolError
from agent.public_web import checked_target
from agent.scheduler.feeds import FeedFetcher
from memory.feeds import Feed

NAME = "rebind.example"
PUBLIC = "93.184.216.34"  # what the check is shown
PAGE = "LOOPBACK-ONLY admin page"


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """NAME resolves to PUBLIC the first time and to 127.0.0.1 from then on."""
    answers: list[str] = []
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (NAME, NAME.encode()):  # anyio asks with the IDNA-encoded bytes
            answers.append(PUBLIC if not answers else "127.0.0.1")
            return real(answers[-1], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    yield answers


async def test_web_fetch_connects_only_to_the_address_it_checked(
    tmp_path: Path, rebinding: list[str]
) -> None:
    async with trust_world(tmp_path) as w:
        w.web.pages["/admin"] = PAGE
        port = w.web.base_url.rsplit(":", 1)[1]
        await w.h.say(instruction("web_fetch", {"url": f"http://{NAME}:{port}/admin"}))
        [result] = w.model.requests[1].tool_results
        assert result.get("is_error"), result
        assert PAGE not in str(w.model.requests[-1].messages)
        assert w.web.requests == []  # the loopback server was never reached
        assert rebinding == [PUBLIC]  # resolved once: the connection went to what was checked


async def test_the_feed_fetcher_connects_only_to_the_address_it_checked(
    tmp_path: Path, rebinding: list[str]
) -> None:
    async with trust_world(tmp_path) as w:
        port = w.web.base_url.rsplit(":", 1)[1]
        feed = Feed(1, 1, f"http://{NAME}:{port}/admin", "", None, None, None, None, None)
        [result] = await FeedFetcher(timeout=2, max_bytes=65536).fetch_all([feed])
        assert result.status == "error", result
        assert w.web.requests == []
        assert rebinding == [PUBLIC]


async def test_a_pinned_request_keeps_the_names_host_and_tls_server_name(
    rebinding: list[str],
) -> None:
    """Connected by address, the request is still the name's: its Host header, and for https
    the server name TLS sends and checks the certificate against."""
    target = await checked_target(f"https://{NAME}:8443/feed?x=1", frozenset())
    assert str(target.url) == f"https://{PUBLIC}:8443/feed?x=1"
    assert target.headers == {"Host": f"{NAME}:8443"}
    assert target.extensions == {"sni_hostname": NAME}
    plain = await checked_target(f"http://{PUBLIC}/", frozenset())
    assert plain.headers == {"Host": PUBLIC} and plain.extensions == {}
    # an allowed host is connected to as usual (it may well be on the LAN)
    allowed = await checked_target("http://localhost:8080/x", frozenset({"localhost"}))
    assert str(allowed.url) == "http://localhost:8080/x" and allowed.headers == {}


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:0:a00:1",  # SIIT 10.0.0.1
        "fec0::1",  # site-local
    ],
)
async def test_ipv6_forms_of_private_ipv4_addresses_are_refused(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    """`is_global` calls these public, but through a NAT64 gateway or a tunnel they reach the
    IPv4 address inside them: a LAN or metadata service."""
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("v6.example", b"v6.example"):
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ToolError, match="not a public address"):
        await checked_target("https://v6.example/", frozenset())
    # a NAT64 form of a public address is fine
    address = "64:ff9b::808:808"
    target = await checked_target("https://v6.example/", frozenset())
    assert target.url.host == address
