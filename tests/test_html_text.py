"""HTML as a person reads it (agent/html_text.py): hidden text is not read either."""

from __future__ import annotations

from agent.html_text import html_to_text
from agent.mail.message import html_to_text as mail_text

LURE = "Your account is locked: call +1 555 0100"


def test_hidden_text_is_not_read() -> None:
    """A mail that shows a newsletter and hides an order for the model (review 29)."""
    for hidden in (
        f'<div style="display:none">{LURE}</div>',
        f'<span style="DISPLAY: none;">{LURE}</span>',
        f'<p style="visibility:hidden">{LURE}</p>',
        f"<div hidden><p>{LURE}</p></div>",
        f'<span style="font-size:0">{LURE}</span>',
        f'<span style="font-size: 0px; color: white">{LURE}</span>',
        f'<div style="opacity:0">{LURE}</div>',
        f'<div style="display:none"><div>{LURE}</div><div>more</div></div>',
        # review 35: what the first filter let through
        f'<div style="opacity:0 !important">{LURE}</div>',
        f'<span style="font-size:0!important">{LURE}</span>',
        f'<span style="font-size:1px">{LURE}</span>',
        f'<div style="position:absolute;left:-9999px">{LURE}</div>',
        f'<div style="height:0em;overflow:hidden">{LURE}</div>',
        f'<div style="clip-path: inset(50%)">{LURE}</div>',
    ):
        page = f"<html><body><p>Weekly news</p>{hidden}<p>Unsubscribe</p></body></html>"
        for text in (html_to_text(page), mail_text(page)):
            assert "Weekly news" in text and "Unsubscribe" in text, (hidden, text)
            assert "locked" not in text and "more" not in text, (hidden, text)


def test_what_shows_is_read() -> None:
    page = (
        "<html><head><title>The  page</title><style>p {}</style></head><body>"
        '<div style="display:block"><p>Shown</p></div><img src="x.png" alt="a cat">'
        '<p style="font-size:12px">Also <a href="https://a.example/x">shown</a></p>'
        '<div style="opacity:0.5">Faded but there</div></body></html>'
    )
    web = html_to_text(page, title=True)
    assert web.startswith("# The page") and "Shown" in web and "[image: a cat]" in web
    assert "Faded but there" in web and "https://a.example/x" not in web
    assert "shown <https://a.example/x>" in mail_text(page)


def test_table_cells_stay_apart() -> None:
    """An HTML-only invoice read "Widget 2319.99" for Widget, 2, 3, 19.99."""
    invoice = (
        "<table><tr><th>Item</th><th>Qty</th><th>Price</th></tr>"
        "<tr><td>Widget</td><td>2</td><td>19.99</td></tr>"
        "<tr><td colspan=2>Total due</td><td>59.97</td></tr></table>"
    )
    lines = [line for line in html_to_text(invoice).splitlines() if line]
    assert lines == ["Item | Qty | Price", "Widget | 2 | 19.99", "Total due | 59.97"]
    layout = "<table><tr><td><p>Hello</p></td></tr><tr><td>World</td></tr></table>"
    assert html_to_text(layout) == "Hello\n\nWorld"  # one cell a row: no separator


def test_a_comment_or_tag_left_open_at_the_end_hides_the_rest() -> None:
    """As a browser shows it: the text after the last ">" was read whole, so a final "<!--"
    never closed carried a hidden order to the model (R131)."""
    for ending in (f"<!-- {LURE}", f'<a title="{LURE}', f"<img alt='{LURE}"):
        for text in (html_to_text(f"<p>Hi</p>{ending}"), mail_text(f"<p>Hi</p>{ending}")):
            assert text.strip() == "Hi", (ending, text)
    assert html_to_text("<p>Hi</p>and the rest & more") == "Hi\nand the rest & more"
    assert html_to_text("a < b, and so on") == "a < b, and so on"
