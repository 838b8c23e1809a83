"""From another site, the console serves only a page the browser opens as its own.

Review 36: a page on another port of the machine, or on a sibling subdomain of the public URL,
is "same-site": the browser sends the console's cookie with its requests (SameSite ignores
ports). `<img src=/activity?tool=zzz>` had the console scan the whole audit log (0.4 s at
300,000 events) as often as the page liked, holding the one database connection; only the two
downloads were refused so. Now anything from another site but a top-level navigation is."""

from __future__ import annotations

import pytest
from test_web_security import Web, web  # noqa: F401

IMAGE = {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
PAGE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}


@pytest.mark.parametrize("path", ["/activity?tool=zzz", "/status", "/memory?q=x", "/approvals"])
async def test_another_sites_subresource_is_refused_and_its_link_is_served(
    web: Web,  # noqa: F811
    path: str,
) -> None:
    cookie = await web.login()
    for site in ("same-site", "cross-site"):
        embedded, text = await web.request(
            "GET", path, cookie=cookie, headers={"Sec-Fetch-Site": site, **IMAGE}
        )
        assert embedded.status == 403 and "Open this from the console" in text
        fetched, _ = await web.request(
            "GET",
            path,
            cookie=cookie,
            headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
        )
        assert fetched.status == 403
        opened, _ = await web.request(
            "GET", path, cookie=cookie, headers={"Sec-Fetch-Site": site, **PAGE}
        )
        assert opened.status == 200
    # the console's own requests, and a client that sends no fetch metadata
    for headers in ({"Sec-Fetch-Site": "same-origin", **IMAGE}, {}):
        own, _ = await web.request("GET", path, cookie=cookie, headers=headers)
        assert own.status == 200


async def test_a_download_is_refused_from_another_site_even_as_a_page(web: Web) -> None:  # noqa: F811
    cookie = await web.login()
    refused, _ = await web.request(
        "GET", "/memory-export", cookie=cookie, headers={"Sec-Fetch-Site": "same-site", **PAGE}
    )
    assert refused.status == 403
    own, _ = await web.request(
        "GET", "/memory-export", cookie=cookie, headers={"Sec-Fetch-Site": "same-origin", **PAGE}
    )
    assert own.status == 200
