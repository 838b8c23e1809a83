"""A page on another port of the owner's machine, or a sibling subdomain of the public URL, is
"same-site": the browser sends the console's SameSite=Strict cookie with its requests (review
79). It can do nothing there, and now it cannot bury the activity log or stream the whole log
again and again either. Real HTTP against a running console (test_web_security's fixture)."""

from __future__ import annotations

import re
from datetime import timedelta

from test_web_security import Web, web  # noqa: F401  (the fixture)


async def test_a_same_site_page_cannot_flood_the_log_with_refused_posts(web: Web) -> None:  # noqa: F811
    cookie = await web.login()
    audit = web.h.steward.stores.audit
    before = (await audit.recent(1))[0].id
    elsewhere = {"Origin": "http://127.0.0.1:9"}  # another port: same site, another origin
    for _ in range(40):
        refused, _ = await web.request(
            "POST", "/goals/add", cookie=cookie, headers=elsewhere, data={"title": "x" * 5000}
        )
        assert refused.status == 403
    new = [e for e in await audit.recent(200) if e.id > before]
    assert [e.kind for e in new] == ["web.origin_refused"]
    assert new[0].detail["count"] == 1 and new[0].actor != ""  # whose session it was
    web.clock.advance(timedelta(seconds=61))
    await web.request("POST", "/goals/add", cookie=cookie, headers=elsewhere, data={})
    [latest] = await audit.recent(1)
    assert latest.kind == "web.origin_refused" and latest.detail["count"] == 40  # none lost
    assert await web.h.steward.stores.goals.all(1) == []


async def test_downloads_are_refused_to_another_sites_page_but_open_from_the_console(
    web: Web,  # noqa: F811
) -> None:
    cookie = await web.login()
    for path in ("/activity/export", "/memory-export"):
        for site in ("same-site", "cross-site"):
            refused, _ = await web.request(
                "GET", path, cookie=cookie, headers={"Sec-Fetch-Site": site}
            )
            assert refused.status == 403, (path, site)
        for site in ("same-origin", "none"):  # a link on the console; the address typed
            fine, _ = await web.request(
                "GET", path, cookie=cookie, headers={"Sec-Fetch-Site": site}
            )
            assert fine.status == 200, (path, site)
    exported = await web.h.steward.stores.audit.recent(20, kind="web.audit_exported")
    assert len(exported) == 2


async def test_the_older_events_link_keeps_a_filter_with_an_ampersand(web: Web) -> None:  # noqa: F811
    for n in range(105):  # more than a page of events for one tool name
        await web.h.steward.stores.audit.record("tool.requested", actor="t", tool="a&b", n=n)
    cookie = await web.login()
    _, html = await web.request("GET", "/activity?tool=a%26b", cookie=cookie)
    older = re.search(r'href="(/activity\?before=[^"]+)">Older events', html)
    assert older, html[-2000:]
    link = older.group(1).replace("&amp;", "&")
    assert "tool=a%26b" in link
    _, page = await web.request("GET", link, cookie=cookie)
    shown = re.findall(r"<td>tool\.requested</td>", page)
    assert shown, "the next page keeps the filter and still finds the tool's events"
