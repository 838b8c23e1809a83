"""A workspace path and a web address have one spelling once validated (agent/tools/canonical)."""

from __future__ import annotations

import pytest

from agent.tools.canonical import canonical_path, canonical_url


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [
        ("./private/diary.md", "private/diary.md"),
        ("private//diary.md", "private/diary.md"),
        ("private\\diary.md", "private/diary.md"),
        ("run.sh/.", "run.sh"),
        ("", "."),
        ("../x", "../x"),  # kept for the sandbox to refuse
        ("/etc/passwd", "/etc/passwd"),
    ],
)
def test_a_workspace_path(spelled: str, canonical: str) -> None:
    assert canonical_path(spelled) == canonical


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [
        ("HTTPS://TRACKER.example./p", "https://tracker.example/p"),
        ("https://tracker.example:443/p", "https://tracker.example/p"),
        ("http://tracker.example:80", "http://tracker.example/"),
        ("https://tracker.example:8443/p", "https://tracker.example:8443/p"),
        ("https://tracker.example/%70a%2f?q=%41%20", "https://tracker.example/pa%2F?q=A%20"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
        ("https://me:pw@Host.example/x#top", "https://me:pw@host.example/x#top"),
        ("ftp://host/file", "ftp://host/file"),  # not a web address: kept, to be refused
        ("https://a:99999/", "https://a:99999/"),
        # R157: dot segments are resolved as the request is sent, escaped ones too, and a
        # host's trailing full stop of another script goes as "." does
        ("http://h/public/../secret/x", "http://h/secret/x"),
        ("http://h/public/%2e%2e/secret/x", "http://h/secret/x"),
        ("http://h/a/./b/.", "http://h/a/b/"),
        ("http://h/..", "http://h/"),
        ("http://tracker.example\u3002/p", "http://tracker.example/p"),
        ("http://tracker.example\uff0e:80/p", "http://tracker.example/p"),
    ],
)
def test_a_web_address(spelled: str, canonical: str) -> None:
    assert canonical_url(spelled) == canonical


def test_what_is_checked_is_what_is_sent() -> None:
    """The path the policy and the card see is the one httpx puts on the wire."""
    import httpx

    for spelled in ("http://h/p/../s/x", "http://h/p/%2E%2E/s/x", "http://h/a/./b/", "http://h"):
        checked = canonical_url(spelled)
        assert httpx.URL(checked).raw_path.decode() == checked.removeprefix("http://h"), spelled


def test_an_escaped_slash_is_seen_as_servers_read_it() -> None:
    from agent.tools.canonical import as_servers_decode

    assert as_servers_decode("http://h/secret%2Fx") == "http://h/secret/x"
    assert as_servers_decode("http://h/public/..%2Fsecret/x") == "http://h/secret/x"
    assert as_servers_decode("http://h/a%5C..%5Csecret/x") == "http://h/secret/x"
    assert as_servers_decode("http://h/a%20b") is None  # no separator: the URL's own folders
    assert as_servers_decode("http://h//secret/x") == "http://h/secret/x"
    assert as_servers_decode("http://h/secret;v=1/x") == "http://h/secret/x"  # Tomcat's reading
    assert as_servers_decode("http://h/public/..;/secret/x") == "http://h/secret/x"
    assert as_servers_decode("http://h/public%2F..//secret/x") == "http://h/secret/x"
