"""Folders named with "&" or letters beyond ASCII over imaps:// (aioimaplib, which sends a name
as given: IMAP writes them in modified UTF-7), and a search saying how many matched (R133)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mailservers import PASSWORD, USER, Dovecot, dovecot_server, plain_mail
from pydantic import SecretStr

from agent.mail.account import MailAccount, parse_imap_url
from agent.mail.imap import SearchQuery
from agent.mail.service import MailService
from memory.clock import FrozenClock
from memory.stores import Stores


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    with dovecot_server() as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        yield server


@pytest.mark.parametrize("tls", [True, False], ids=["imaps", "starttls"])
async def test_folders_with_ampersands_and_accents_open_list_and_take_moves(
    tmp_path: Path, dovecot: Dovecot, tls: bool
) -> None:
    dovecot.deliver(plain_mail("Lab <lab@corp.example>", "Prototype", "ok"), folder="R&-D")
    dovecot.deliver(plain_mail("Dr <dr@clinic.example>", "Befund", "ok"), folder="&AMQ-rzte")
    for n in range(7):
        dovecot.deliver(plain_mail("Ann <ann@x.example>", f"Note {n}", "x"))
    stores = await Stores.open(
        tmp_path / "db.sqlite", FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    )
    try:
        account = MailAccount(
            imap=parse_imap_url(dovecot.imap_url(tls=tls)),
            smtp=None,
            password=SecretStr(PASSWORD),
            from_name="Me",
            from_address=USER,
            folders=("INBOX", "R&D", "Ärzte"),
            poll_seconds=2.0,
        )
        service = MailService(account, stores, FrozenClock(datetime(2026, 3, 1, tzinfo=UTC)))
        [lab] = await service.search("R&D", SearchQuery())
        [doctor] = await service.search("Ärzte", SearchQuery())
        assert (lab.mail.subject, doctor.mail.subject) == ("Prototype", "Befund")
        async with service.session() as session:
            names = {folder.name for folder in await session.folders()}
        assert {"R&D", "Ärzte"} <= names, names
        await service.move("INBOX", [1], "R&D")
        assert len(await service.search("R&D", SearchQuery())) == 2
        newest = await service.search("INBOX", SearchQuery(), 3)
        assert (len(newest), newest.total) == (3, 6)
    finally:
        await stores.close()
