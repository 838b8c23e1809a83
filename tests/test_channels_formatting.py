"""Markdown → Telegram HTML / Slack mrkdwn, and splitting long replies on paragraph boundaries."""

from __future__ import annotations

import pytest
from fakes.telegram import parse_html

from bot.channels.formatting import (
    markdown_to_slack,
    markdown_to_telegram_html,
    slack_chunks,
    slack_to_plain,
    split_plain,
    telegram_chunks,
    utf16_len,
)

NASTY = [
    "a < b && c > d",
    "**unclosed bold and *half italic",
    "<script>alert('x')</script> <b>not a tag</b>",
    '[link](https://e.x/?a=1&b="2") and ![img](https://e.x/p.png)',
    '```html\n<div class="x">&nbsp;</div>\n```',
    "`code with <tags> & stuff`",
    "> quote with **bold**\n>> nested quote",
    "- one\n  - nested <b>\n- two\n\n1. first\n2. second",
    "| a | b<c |\n|---|---|\n| 1 | & |",
    "# Heading with `code`\n\n---\n\ntext  \nhard break",
    "&amp; already escaped &#39; and &unknown;",
    "~~gone~~ and __under__ and ***both***",
    "[](https://empty.label) [x](javascript:alert(1))",
]


@pytest.mark.parametrize("markdown", NASTY)
def test_telegram_html_always_passes_telegrams_strict_parser(markdown: str) -> None:
    html = markdown_to_telegram_html(markdown)
    text, _ = parse_html(html)  # raises like Telegram's "can't parse entities"
    assert text.strip()


def test_telegram_html_maps_markdown_to_entities() -> None:
    html = markdown_to_telegram_html(
        "# Plan\n\n**Bold** *it* ~~old~~ `x<y` [site](https://e.x/?a=1&b=2)\n\n"
        "```python\nif a < b:\n    pass\n```\n\n> wise words\n\n- one\n- two"
    )
    text, entities = parse_html(html)
    assert text == (
        "Plan\n\nBold it old x<y site (https://e.x/?a=1&b=2)\n\nif a < b:\n    pass\n\n"
        "wise words\n\n• one\n• two"
    )
    kinds = [(e["type"], text[e["offset"] : e["offset"] + e["length"]]) for e in entities]
    assert kinds == [
        ("bold", "Plan"),
        ("bold", "Bold"),
        ("italic", "it"),
        ("strikethrough", "old"),
        ("code", "x<y"),
        ("text_link", "https://e.x/?a=1&b=2"),
        ("pre", "if a < b:\n    pass"),
        ("expandable_blockquote", "wise words"),
    ]
    assert next(e for e in entities if e["type"] == "pre")["language"] == "python"
    assert next(e for e in entities if e["type"] == "text_link")["url"] == "https://e.x/?a=1&b=2"


def test_raw_html_from_the_model_is_shown_not_interpreted() -> None:
    html = markdown_to_telegram_html("<b>bold?</b> <a href='x'>no</a>")
    assert parse_html(html) == ("<b>bold?</b> <a href='x'>no</a>", [])


def test_a_long_reply_splits_on_paragraph_boundaries_under_the_limit() -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]
    chunks = telegram_chunks("\n\n".join(paragraphs))
    assert len(chunks) > 1
    rebuilt: list[str] = []
    for chunk in chunks:
        text, _ = parse_html(chunk.markup)
        assert utf16_len(text) <= 4096
        rebuilt.extend(text.split("\n\n"))
    assert rebuilt == [p.strip() for p in paragraphs]  # no paragraph was cut in two


def test_oversized_blocks_are_cut_on_lines_then_spaces_and_code_keeps_its_fences() -> None:
    code = "```\n" + "\n".join(f"line {i} " + "x" * 60 for i in range(150)) + "\n```"
    one_paragraph = " ".join(["lorem"] * 2000)
    emoji = "😀" * 3000  # two UTF-16 units each: 6000 as Telegram counts
    chunks = telegram_chunks(f"{code}\n\n{one_paragraph}\n\n{emoji}")
    for chunk in chunks:
        text, _ = parse_html(chunk.markup)
        assert 0 < utf16_len(text) <= 4096
    code_parts = [c for c in chunks if c.markup.startswith("<pre>")]
    assert len(code_parts) >= 2
    assert all(c.markup.endswith("</pre>") for c in code_parts)
    assert sum(parse_html(c.markup)[0].count("line ") for c in code_parts) == 150
    words = sum(parse_html(c.markup)[0].count("lorem") for c in chunks)
    assert words == 2000
    assert sum(parse_html(c.markup)[0].count("😀") for c in chunks) == 3000


def test_each_chunk_keeps_its_markdown_for_the_plain_text_fallback() -> None:
    chunks = telegram_chunks("**a** " + "b " * 3000 + "\n\n*c*")
    assert len(chunks) == 2 and chunks[0].source.startswith("**a**")
    assert chunks[-1].source.endswith("*c*")
    assert split_plain("x" * 9000, 4096) == ["x" * 4096, "x" * 4096, "x" * 808]


def test_slack_mrkdwn() -> None:
    assert markdown_to_slack(
        "# Title\n\n**bold** *it* ~~no~~ `a<b` [doc](https://e.x/?q=1) 1 < 2 & 3 > 2"
    ) == ("*Title*\n\n*bold* _it_ ~no~ `a&lt;b` doc (<https://e.x/?q=1>) 1 &lt; 2 &amp; 3 &gt; 2")
    assert markdown_to_slack("```py\nx = 1\n```") == "```\nx = 1\n```"
    assert markdown_to_slack("> a\n> b") == "> a\n> b"
    assert markdown_to_slack("- a\n- b\n\n3. c") == "• a\n• b\n\n3. c"
    chunks = slack_chunks("\n\n".join(["para " * 300] * 5))
    assert len(chunks) > 1 and all(len(c.markup) <= 3900 for c in chunks)


def test_slack_markup_in_incoming_text_becomes_plain() -> None:
    assert (
        slack_to_plain(
            "hi <@U123> see <https://a.b|the site> in <#C1|general> <!here> &lt;3 &amp; "
            "<mailto:x@y.z>"
        )
        == "hi @U123 see the site (https://a.b) in #general @here <3 & x@y.z"
    )


def test_a_table_with_wide_characters_stays_aligned() -> None:
    """Padded by characters, a row holding 日本語 stood three columns right of the rest (R137)."""
    from bot.channels.formatting import markdown_to_telegram_html

    html = markdown_to_telegram_html(
        "| name | city |\n|---|---|\n| 日本語 | Tokyo |\n| Ann | Paris |"
    )
    rows = html.removeprefix("<pre>").removesuffix("</pre>").splitlines()
    assert rows[2] == "日本語 | Tokyo" and rows[3] == "Ann    | Paris"


def test_a_link_in_a_table_keeps_its_address_on_telegram_and_slack() -> None:
    """A table is a code block, where nothing is a link: "[buy](url)" came as "buy" with no
    address anywhere in the message (R140)."""
    from bot.channels.formatting import markdown_to_slack, markdown_to_telegram_html

    table = (
        "| shop | link |\n|---|---|\n"
        "| Shop & Co | [buy](https://shop.example/item?id=1&ref=x) |\n"
        "| Other | https://other.example/a |\n"
        "| Mail | [write](mailto:ann@example.org) |"
    )
    html = markdown_to_telegram_html(table)
    slack = markdown_to_slack(table)
    assert "buy (https://shop.example/item?id=1&amp;ref=x)" in html
    assert "buy (https://shop.example/item?id=1&amp;ref=x)" in slack
    for shown in (html, slack):
        assert "https://other.example/a" in shown and "(https://other.example/a)" not in shown
        assert "write (ann@example.org)" in shown
