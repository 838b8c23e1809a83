"""Folders named with "&" or letters beyond ASCII over imaps:// (aioimaplib, which sends a name
as given: IMAP writes them in modified UTF-7), and a search saying how many matched (R133)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from mailservers import PASSWORD, USER, Dovecot, plain_mail
from pydantic import SecretStr

from agent.mail.account import MailAccount, parse_imap_url
from agent.mail.imap import SearchQuery
from agent.mail.service import MailService
from memory.clock import FrozenClock
from memory.stores import Stores


def _service(
    dovecot: Dovecot, stores: Stores, clock: FrozenClock, tls: bool, folders: tuple[str, ...]
) -> MailService:
    account = MailAccount(
        imap=parse_imap_url(dovecot.imap_url(tls=tls)),
        smtp=None,
        password=SecretStr(PASSWORD),
        from_name="Me",
        from_address=USER,
        folders=folders,
        poll_seconds=2.0,
    )
    return MailService(account, stores, clock)


@pytest.mark.parametrize("tls", [True, False], ids=["imaps", "starttls"])
async def test_folders_with_ampersands_and_accents_open_list_and_take_moves(
    tmp_path: Path, dovecot: Dovecot, tls: bool
) -> None:
    dovecot.deliver(plain_mail("Lab <lab@corp.example>", "Prototype", "ok"), folder="R&-D")
    dovecot.deliver(plain_mail("Dr <dr@clinic.example>", "Befund", "ok"), folder="&AMQ-rzte")
    for n in range(7):
        dovecot.deliver(plain_mail("Ann <ann@x.example>", f"Note {n}", "x"))
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    stores = await Stores.open(tmp_path / "db.sqlite", clock)
    try:
        service = _service(dovecot, stores, clock, tls, ("INBOX", "R&D", "Ärzte"))
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


async def test_a_search_by_days_takes_them_in_the_persons_zone(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    """The server's days are UTC; the owner's, Tokyo's: a mail at 07:30 on the 14th in Tokyo
    (22:30 on the 13th UTC) was not in "since the 14th", and one of the 15th was (R133)."""
    from zoneinfo import ZoneInfo

    tokyo = ZoneInfo("Asia/Tokyo")
    boss = datetime(2026, 3, 14, 7, 30, tzinfo=tokyo)
    later = datetime(2026, 3, 15, 5, 0, tzinfo=tokyo)
    dovecot.deliver(plain_mail("Boss <b@x.example>", "Urgent", "x"), received=boss.timestamp())
    dovecot.deliver(plain_mail("Ann <a@x.example>", "Later", "x"), received=later.timestamp())
    clock = FrozenClock(datetime(2026, 3, 16, tzinfo=UTC))
    stores = await Stores.open(tmp_path / "db.sqlite", clock)
    try:
        service = _service(dovecot, stores, clock, True, ("INBOX",))
        day = SearchQuery(since=date(2026, 3, 14), before=date(2026, 3, 15))
        found = await service.search("INBOX", day, zone=tokyo)
        assert [hit.mail.subject for hit in found] == ["Urgent"]
        assert found.total == 1
    finally:
        await stores.close()


async def test_a_search_by_days_over_thousands_of_mails_answers(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    """Dating 2,000 matches in one FETCH overflowed aioimaplib's recursion over imaps: the
    search hung far past the 30 s timeout (R136)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    for n in range(3_000):
        came = (start + timedelta(hours=n)).timestamp()
        dovecot.deliver(plain_mail("Ann <a@x.example>", f"Note {n}", "x"), received=came)
    clock = FrozenClock(datetime(2026, 3, 16, tzinfo=UTC))
    stores = await Stores.open(tmp_path / "db.sqlite", clock)
    try:
        service = _service(dovecot, stores, clock, True, ("INBOX",))
        since = SearchQuery(since=date(2025, 1, 2))
        found = await asyncio.wait_for(service.search("INBOX", since, zone=ZoneInfo("UTC")), 60)
        assert len(found) == 20 and found.total == 3_000 - 12
    finally:
        await stores.close()
