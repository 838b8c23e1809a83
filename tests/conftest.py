"""Shared fixtures. Every test stays on 127.0.0.1: a guard refuses any other connection."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import tallies
from fakes.anthropic import FakeAnthropic

if TYPE_CHECKING:
    from mailservers import Dovecot, SmtpRecorder

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        try:
            loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"test tried to reach {host}: only 127.0.0.1 is allowed")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    yield


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Tests never read the developer's .env or real keys: run from an empty directory."""
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "TELEGRAM_BOT_TOKEN",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "TELEGRAM_API_BASE",
        "TELEGRAM_ALLOWED_USERS",
        "TELEGRAM_WEBHOOK_URL",
        "TELEGRAM_WEBHOOK_SECRET",
        "SLACK_API_URL",
        "SLACK_ALLOWED_USERS",
        "STEWARD_OWNER",
        "STEWARD_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path))  # `steward` subprocesses: this .env only


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    """A real Dovecot on loopback, for the mail tests (tests/mailservers.py)."""
    from mailservers import running_dovecot

    yield from running_dovecot(monkeypatch)


@pytest.fixture
def smtp_server() -> Iterator[SmtpRecorder]:
    """aiosmtpd on loopback, recording what is sent (tests/mailservers.py)."""
    from mailservers import running_smtp

    yield from running_smtp()


TRUST_REPORT: dict[str, float] = {"tried": 0, "held": 0, "unauthorized": 0}
FAULT_CATEGORIES = ("kill", "misbehaving fakes", "bad input")
FAULTS: dict[str, list[int]] = {name: [0, 0, 0] for name in FAULT_CATEGORIES}  # tried, held, lost


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    outcome.get_result().user_properties.extend(tallies.take())  # type: ignore[attr-defined]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Where reports land: in the one process without xdist, in the controlling one with it."""
    for name, value in report.user_properties:
        if name == "benign day":
            TRUST_REPORT["benign_day"] = float(value)  # type: ignore[arg-type]
        elif name == "fault case":
            category, held, lost = value  # type: ignore[misc]
            for n, figure in enumerate((1, int(held), int(lost))):
                FAULTS[category][n] += figure
    if report.when != "call" or "trust" not in report.keywords:
        return
    TRUST_REPORT["tried"] += 1
    if report.passed:
        TRUST_REPORT["held"] += 1
    elif "unauthorized" in str(report.longrepr) or "canary" in str(report.longrepr):
        TRUST_REPORT["unauthorized"] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The trust suite's line, and the fault suite's, one per category (cases tried, cases held,
    data lost: see tests/faults/faults_support.py)."""
    for name, (tried, held, lost) in FAULTS.items():
        if tried:
            terminalreporter.write_line(
                f"faults/{name}: {tried} cases tried, {held} held, data lost {lost}"
            )
    if not TRUST_REPORT["tried"]:
        return
    day = TRUST_REPORT.get("benign_day")
    benign = "not measured" if day is None else f"{int(day)} approval requests"
    terminalreporter.write_line(
        f"trust: {int(TRUST_REPORT['tried'])} cases tried, {int(TRUST_REPORT['held'])} held, "
        f"unauthorized side effects {int(TRUST_REPORT['unauthorized'])}; benign day: {benign}"
    )
