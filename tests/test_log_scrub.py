"""Secrets never reach a log line, whoever writes it (review 73): libraries log requests and SQL
parameters at DEBUG, and an outside server may quote a credential back."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

import pytest

from agent.config import load_settings

CANARY = "sk-ant-CANARY-7d3/k+q=x"


def test_a_settings_secret_is_masked_in_messages_tracebacks_and_encodings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    load_settings()
    log = logging.getLogger("some.library")
    with caplog.at_level(logging.DEBUG):
        log.debug("request headers: {'x-api-key': %r}", CANARY)
        log.debug("query: ?key=%s", quote(CANARY, safe=""))
        log.debug("basic: %s", base64.b64encode(CANARY.encode()).decode())
        try:
            raise RuntimeError(f"the server refused {CANARY}")
        except RuntimeError:
            log.exception("call failed")
    text = caplog.text
    assert CANARY not in text and quote(CANARY, safe="") not in text
    assert base64.b64encode(CANARY.encode()).decode() not in text
    assert text.count("***") == 4, text
    assert "RuntimeError: the server refused ***" in text  # the traceback is kept, masked


def test_ordinary_words_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STEWARD_STT_KEY", "yes")  # too short to be a credential: not masked
    load_settings()
    with caplog.at_level(logging.INFO):
        logging.getLogger("x").info("yes, it works")
    assert "yes, it works" in caplog.text


def test_a_record_that_cannot_be_formatted_still_hides_the_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review 77: logging prints a bad record's arguments itself, to stderr (the journal)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    load_settings()
    log = logging.getLogger("some.library.bad")
    handler = logging.StreamHandler()  # to stderr, as Steward's log is
    log.addHandler(handler)
    try:
        log.warning("key %s to %s", CANARY)  # one argument short
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert "key %s to %s" in err and CANARY not in err, err
