"""Long replies split into messages: every piece renders as what the model wrote.

A list splits between its items (a numbered one goes on with its numbers), a code block keeps
its fences in every piece (one the text left open too), a quote is quoted in every piece, a
table stays a code block, a reference-style link keeps its URL wherever it lands, and a code
block's lines are never indented by the list around it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fakes.telegram import parse_html

from agent.text_fences import close_open_fence, open_fence
from bot.channels.formatting import (
    markdown_to_slack,
    markdown_to_telegram_html,
    slack_chunks,
    telegram_chunks,
    telegram_visible_text,
    utf16_len,
)
from bot.channels.splitting import markdown_chunks

LIMIT = 1200  # small parts: quick, and many of them


def _shown(markdown: str, limit: int = LIMIT) -> list[tuple[str, list[dict]]]:
    """Telegram's text and entities for each part, each checked against the limit."""
    parts = [parse_html(chunk.markup) for chunk in telegram_chunks(markdown, limit)]
    assert all(0 < utf16_len(text.strip()) <= limit for text, _ in parts)
    return parts


def _entities(part: tuple[str, list[dict]], *kinds: str) -> list[str]:
    text, entities = part
    return [text[e["offset"] : e["offset"] + e["length"]] for e in entities if e["type"] in kinds]


def _outside_code(part: tuple[str, list[dict]]) -> str:
    text, entities = part
    covered: set[int] = set()
    for e in entities:
        if e["type"] in ("pre", "code"):
            covered.update(range(e["offset"], e["offset"] + e["length"]))
    return "".join(ch for i, ch in enumerate(text) if i not in covered)


# --- reference-style links


def test_a_reference_style_link_keeps_its_url_in_whichever_part_it_lands() -> None:
    markdown = (
        "Intro " + "word " * 400 + "\n\nSee [the notice][City  Notice] and [the map][2].\n\n"
        "[city notice]: https://example.org/notice-42\n[2]: <https://example.org/map> 'Map'"
    )
    chunks = telegram_chunks(markdown, LIMIT)
    assert len(chunks) >= 2
    text, entities = parse_html(chunks[-1].markup)
    assert "the notice (https://example.org/notice-42)" in text
    assert "the map (https://example.org/map)" in text
    assert {e["url"] for e in entities if e["type"] == "text_link"} == {
        "https://example.org/notice-42",
        "https://example.org/map",
    }
    # the plain-text fallback of that part carries the definitions it uses, the others none
    assert "[city notice]: https://example.org/notice-42" in chunks[-1].source
    assert "[2]: <https://example.org/map> 'Map'" in chunks[-1].source
    assert all("https://" not in chunk.source for chunk in chunks[:-1])
    (slack,) = slack_chunks("A [doc][1].\n\n[1]: https://e.x/d")
    assert slack.markup == "A doc (<https://e.x/d>)."


def test_the_renderers_take_the_texts_link_definitions() -> None:
    references = {"1": {"href": "https://e.x/1", "title": ""}}
    assert markdown_to_telegram_html("[a][1]") == "[a][1]"
    assert markdown_to_telegram_html("[a][1]", references) == (
        'a (<a href="https://e.x/1">https://e.x/1</a>)'
    )
    assert markdown_to_slack("[a][1]", references) == "a (<https://e.x/1>)"


# --- code inside a list


def test_code_in_a_list_item_is_not_indented_by_the_list() -> None:
    markdown = (
        "1. Put this in `job.py`:\n\n   ```python\n   import os\n   if os.getcwd():\n"
        "       print(os.getcwd())\n   ```\n2. Run it.\n   - with care\n\n     ```\n     x\n"
        "     y\n     ```"
    )
    part = parse_html(markdown_to_telegram_html(markdown))
    assert _entities(part, "pre") == ["import os\nif os.getcwd():\n    print(os.getcwd())", "x\ny"]
    assert "2. Run it.\n\n   • with care" in part[0]  # the list's own lines still indented
    slack = markdown_to_slack(markdown)
    assert "```\nimport os\nif os.getcwd():\n    print(os.getcwd())\n```" in slack
    # a quoted code block in Slack: every line quoted, none indented
    assert markdown_to_slack("- a\n\n  > ```\n  > x\n  > y\n  > ```") == (
        "• a\n\n  > ```\n> x\n> y\n> ```"
    )


# --- lists longer than a message


def test_a_long_code_block_in_a_list_item_stays_code_in_every_part() -> None:
    code = [f"total_{i} = a_{i}*b*c_{i}  # step {i}" for i in range(80)]
    markdown = (
        "1. Replace the function:\n\n   ```python\n"
        + "\n".join("   " + line for line in code)
        + "\n   ```\n\n2. Run the tests with `make test`.\n\nDone."
    )
    parts = _shown(markdown)
    assert len(parts) >= 3
    delivered = [
        line for part in parts for block in _entities(part, "pre") for line in block.split("\n")
    ]
    assert delivered == code
    prose = "".join(_outside_code(part) for part in parts)
    assert "1. Replace the function:" in prose and "2. Run the tests with" in prose
    assert "```" not in prose and "*b*" not in prose and "Done." in prose
    # Slack: every part's code between fences
    for chunk in slack_chunks(markdown, LIMIT):
        assert chunk.markup.count("```") % 2 == 0
    slack_code = "".join(
        re.findall(
            r"```\n(.*?)\n```", "".join(c.markup for c in slack_chunks(markdown, LIMIT)), re.S
        )
    )
    assert all(line in slack_code for line in code)


def test_a_long_nested_list_stays_a_list_in_every_part() -> None:
    lines = []
    for i in range(2):
        lines.append(f"- **Week {i}**: the plan")
        lines += [
            f"    - task {i}.{j}: water the *plants* and check the `mail` box" for j in range(40)
        ]
    parts = _shown("\n".join(lines))
    assert len(parts) >= 4
    for text, entities in parts:
        assert "*plants*" not in text and "`mail`" not in text
        assert not any(e["type"] == "pre" for e in entities)
    tasks = [line.strip() for text, _ in parts for line in text.split("\n") if "task" in line]
    assert tasks == [
        f"• task {i}.{j}: water the plants and check the mail box"
        for i in range(2)
        for j in range(40)
    ]


def test_a_long_numbered_list_goes_on_with_its_numbers() -> None:
    for marker in ("1.", "1)"):  # numbered as models often number: every item "1."
        parts = _shown("\n".join(f"{marker} step " + "word " * 30 for _ in range(40)))
        assert len(parts) >= 3
        numbers = [int(line.split(".")[0]) for text, _ in parts for line in text.split("\n")]
        assert numbers == list(range(1, 41))
    # a part starting at item 10 of a list numbered from 7 ("16." is wider than "7.")
    items = [f"{n}. step {n}\n\n   ```\n   code {n}\n   ```" for n in range(7, 40)]
    parts = _shown("\n".join(items), 400)
    assert [re.findall(r"^(\d+)\. step (\d+)", t, re.M) for t, _ in parts] == [
        [(a, a) for a in re.findall(r"step (\d+)", t)] for t, _ in parts
    ]
    assert [line for part in parts for line in _entities(part, "pre")] == [
        f"code {n}" for n in range(7, 40)
    ]


def test_a_long_list_item_splits_between_its_blocks() -> None:
    markdown = (
        "- First "
        + "word " * 200
        + "\n\n  Second "
        + "word " * 200
        + "\n\n  Third "
        + "word " * 100
    )
    parts = _shown(markdown)
    assert parts[0][0].startswith("• First")
    assert [text.split(" ")[0] for text, _ in parts[1:]] == ["Second", "Third"]


# --- quotes, code and tables longer than a message


def test_a_long_quote_is_quoted_in_every_part() -> None:
    markdown = "\n>\n".join(f"> para {i} **bold** " + "word " * 40 for i in range(30))
    parts = _shown(markdown)
    assert len(parts) >= 3
    for text, entities in parts:
        assert "**" not in text and ">" not in text
        (quote,) = [e for e in entities if e["type"] == "expandable_blockquote"]
        assert quote["offset"] == 0 and quote["length"] == len(text)
    for chunk in slack_chunks(markdown, LIMIT):
        assert all(line.startswith(">") for line in chunk.markup.split("\n"))
    # a quoted code block longer than a part: code, and quoted, in every part
    code = [f"line_{i} = value_{i}*scale  # {i}" for i in range(80)]
    parts = _shown("> From the log:\n>\n> ```\n" + "\n".join("> " + c for c in code) + "\n> ```")
    assert len(parts) >= 3
    assert [
        line for part in parts for b in _entities(part, "pre") for line in b.split("\n")
    ] == code
    assert all(_entities(part, "expandable_blockquote") for part in parts)


def test_a_code_block_left_open_keeps_its_fence_in_every_part() -> None:
    body = ["def main():"] + [
        f"    total = total + row[{i}]*weight[{i}]  # step {i}" for i in range(60)
    ]
    markdown = "Here is the script:\n\n```python\n" + "\n".join(body)
    parts = _shown(markdown)
    assert len(parts) >= 3
    delivered = [
        line for part in parts for block in _entities(part, "pre") for line in block.split("\n")
    ]
    assert delivered == body  # indentation kept, nothing shown as prose
    # text after a block left open (as a later piece of a split item) is not swallowed
    parts = _shown("- step\n\n  ```\n  " + "\n  ".join(body) + "\n\nafter", 10_000)
    assert _outside_code(parts[-1]).endswith("after")


def test_a_long_table_stays_a_code_block_in_every_part() -> None:
    rows = [f"| {i} | item {i} with a long description |" for i in range(80)]
    parts = _shown("| n | what |\n|---|---|\n" + "\n".join(rows))
    assert len(parts) >= 3
    for text, entities in parts:
        (pre,) = _entities((text, entities), "pre")
        assert pre == text.strip() and pre.startswith("n  | what")
    shown = [line for text, _ in parts for line in text.split("\n")[2:]]
    assert shown == [f"{i:<2} | item {i} with a long description" for i in range(80)]


# --- the cut-off note's fence check (agent/text_fences.py)


def test_an_open_fence_is_found_and_closed_as_commonmark_reads_it() -> None:
    assert open_fence("```py\nx = 1\n```\ntext") is None
    assert open_fence("```py\nx = 1") == ("", "```")
    assert open_fence("````\n```\nstill code") == ("", "````")  # a shorter run closes nothing
    assert open_fence("~~~\n```\n") == ("", "~~~")  # nor another character
    assert open_fence("```\nx\n``` not a closer") == ("", "```")  # nor one with an info string
    assert open_fence("```js `x`\nnot a fence") is None  # backticks in the info: no opener
    assert open_fence("1. step\n\n   ```sh\n   ls") == ("   ", "```")
    assert close_open_fence("1. step\n\n   ```sh\n   ls\n") == "1. step\n\n   ```sh\n   ls\n   ```"
    assert close_open_fence("no code") == "no code"


# --- how many messages, and how many renders to find them


def _numbered_answer() -> str:
    """An intro, 8 steps (step 3 holding a 110-line code block), a closing line: 5.8k."""
    code = "\n".join(f"   line_{i} = compute({i}, 'some argument here')" for i in range(110))
    steps = [f"{n}. Step {n}: do the thing number {n} carefully." for n in range(1, 9)]
    steps[2] += "\n\n   ```python\n" + code + "\n   ```\n\n   Then run it once more."
    return "Here is the plan.\n\n" + "\n".join(steps) + "\n\nThat is all."


def test_a_split_block_shares_its_messages_with_what_is_around_it() -> None:
    # 8878b62 sent this in 6 messages (17, 131, 65, 4071, 791, 343 characters), the splitter
    # before it in 3: the intro, the steps before the code and its first line were each alone
    parts = _shown(_numbered_answer(), 4096)
    assert len(parts) == 2
    assert parts[0][0].startswith("Here is the plan.\n\n1. Step 1")
    assert re.findall(r"^(\d)\. Step (\d)", "\n".join(t for t, _ in parts), re.M) == [
        (str(n), str(n)) for n in range(1, 9)
    ]
    code = [line for part in parts for b in _entities(part, "pre") for line in b.split("\n")]
    assert code == [f"line_{i} = compute({i}, 'some argument here')" for i in range(110)]
    assert _outside_code(parts[-1]).rstrip().endswith("That is all.")
    # a code block longer than a message: the line before it and the one after it beside it
    body = [f"total = total + row[{i}]*weight[{i}]*scale  # step {i}" for i in range(140)]
    markdown = "Here is the script:\n\n```python\n" + "\n".join(body) + "\n```\n\nDone."
    for chunks in (telegram_chunks(markdown), slack_chunks(markdown)):
        assert len(chunks) == 2
        assert chunks[0].source.startswith("Here is the script:\n\n```python\n")
        assert chunks[1].source.endswith("```\n\nDone.")


def test_the_rest_of_a_split_item_goes_on_with_the_items_after_it() -> None:
    # each item's sub-list is taken out of it at a part's end: what is left of it goes in the
    # next part with the items after it, not alone
    lines = []
    for i in range(300):
        lines += [f"- item {i} with some words", f"  - sub {i} more words", f"    - subsub {i} w"]
    parts = _shown("\n".join(lines), 1000)
    assert all(utf16_len(text) > 900 for text, _ in parts[:-1])
    shown = [line.strip() for text, _ in parts for line in text.split("\n")]
    assert [line for line in shown if "item" in line] == [
        f"• item {i} with some words" for i in range(300)
    ]
    # a numbered sub-list taken out of an item is not continued by the next item's number
    items = [
        f"{n}. step {n}\n\n{pad}1. first\n{pad}2. second " + "word " * 60
        for n in range(1, 30)
        for pad in [" " * len(f"{n}. ")]
    ]
    parts = _shown("\n".join(items), 700)
    steps = [int(m) for t, _ in parts for m in re.findall(r"^(\d+)\. step", t, re.M)]
    subs = [m for t, _ in parts for m in re.findall(r"^\s*(\d+)\. (?:first|second)", t, re.M)]
    assert steps == list(range(1, 30))
    assert subs == ["1", "2"] * 29


def _renders(markdown: str, limit: int = 4096) -> tuple[int, int]:
    """How many messages, and how many times the splitter rendered a piece to find them."""
    calls = 0

    def render(source: str, references: Mapping[str, Any] | None = None) -> str:
        nonlocal calls
        calls += 1
        return markdown_to_telegram_html(source, references)

    chunks = markdown_chunks(
        markdown, render, lambda markup: utf16_len(telegram_visible_text(markup).strip()), limit
    )
    return len(chunks), calls


def test_how_much_of_a_long_block_fits_is_searched_for_not_tried_line_by_line() -> None:
    # 8878b62 rendered the growing piece once a row, line or word (1,016, 3,021 and 6,029 renders
    # here): 3.5-4.5 s of CPU for the table, at every streaming preview update
    table = "| a | b |\n|---|---|\n" + "\n".join(f"| {k} | {'w ' * 10} |" for k in range(1000))
    messages, renders = _renders(table)
    assert messages == 7 and renders < 250
    messages, renders = _renders("```\n" + "\n".join(f"x_{k} = {k}" for k in range(3000)) + "\n```")
    assert messages == 10 and renders < 300
    messages, renders = _renders(" ".join(f"word{k}" for k in range(6000)))
    assert messages == 13 and renders < 400


def test_a_word_that_would_start_a_block_is_kept_as_text_where_a_part_begins() -> None:
    """A paragraph cut on a space so that ">5" began the next part lost its ">" (the part
    became a quote of "5"); "2." began a numbered list, "#" a heading, "~~~" code."""
    markers = [">5", "#3", "2.", "7)", "-", "+", "*", "~~~", "==="]
    words = [f"w{i}" if i % 2 else markers[i // 2 % len(markers)] for i in range(1, 1500)]
    markdown = "Counts: " + " ".join(words)
    starts = set()
    for limit in range(LIMIT - 20, LIMIT + 20):  # the parts begin at other words
        parts = _shown(markdown, limit)
        assert len(parts) >= 5
        for text, entities in parts:
            assert not [e for e in entities if "quote" in e["type"] or e["type"] in ("pre", "code")]
            starts.add(text.split()[0])
        said = " ".join(text for text, _ in parts).split()
        assert said == markdown.split()
    assert set(markers) <= starts  # each of them began a part
