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
    ],
)
def test_a_web_address(spelled: str, canonical: str) -> None:
    assert canonical_url(spelled) == canonical
