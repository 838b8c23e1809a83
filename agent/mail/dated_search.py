"""A mail search by dates as the person means them: IMAP's SINCE and BEFORE compare days in
the server's time zone, so the server is asked a day wider on each side and each arrival is
dated in the person's zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, tzinfo

from agent.mail.imap import ImapSession, SearchQuery

__all__ = ["DATED_MOST", "arrived_within"]

DATED_MOST = 5_000
"""Of a search by dates, the newest this many the server finds are dated by their arrival."""
DATED_AT_ONCE = 250
"""Arrival dates asked for in one FETCH: 2,000 in one overflowed aioimaplib's recursion, and
the search hung past every timeout (R136)."""


async def arrived_within(session: ImapSession, query: SearchQuery, zone: tzinfo) -> list[int]:
    """What `query` finds with its days taken in `zone`: IMAP's SINCE and BEFORE compare days
    in the server's zone (R133: a 07:30 mail in Tokyo on a UTC server was not "today's"), so
    the server is asked a day wider on each side and each arrival is dated here."""
    day = timedelta(days=1)
    wider = replace(
        query,
        since=query.since - day if query.since else None,
        before=query.before + day if query.before else None,
    )
    found = (await session.search(wider))[-DATED_MOST:]
    kept = []
    for start in range(0, len(found), DATED_AT_ONCE):  # aioimaplib reads an answer of a few
        batch = found[start : start + DATED_AT_ONCE]  # thousand lines by recursing (R136)
        for item in await session.headers(batch, header=False):
            if item.internaldate is None:
                continue
            local = item.internaldate.astimezone(zone).date()
            if (query.since is None or local >= query.since) and (
                query.before is None or local < query.before
            ):
                kept.append(item.uid)
    return sorted(kept)
