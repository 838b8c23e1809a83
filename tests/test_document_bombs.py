"""Small documents that cost gigabytes or minutes, and texts that were misread (review 64).

HTML (agent/html_text.py, for files, web pages and mail alike): one tag of a million
attributes took 880 MB, hidden elements nested a million deep 134 MB, and unclosed markup
(`</a`, `<?`) took time growing with the square of its length. A PDF (agent/media/pdf_text.py,
pdf_child.py) of 48 KB whose pages share one stream of 1 MB of text became 53 MB of text.
Texts in UTF-16 without a byte order mark, of an odd length, or in UTF-32 were refused,
failed or read as NULs (agent/media/documents.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media_bombs import text_pdf

from agent.html_text import html_to_text
from agent.media import pdf_text
from agent.media.documents import DocumentError, _decode, extract_text

ROOT = Path(__file__).resolve().parents[1]

_GROWTH = """
import resource, sys, time
from agent.html_text import html_to_text
markup = {markup}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.process_time()
text = html_to_text(markup, title=True, links=True)
took = time.process_time() - started
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grew // 1024, round(took, 2), repr(text[:200]))
"""


def _growth(markup: str) -> tuple[int, float, str]:
    """MiB the conversion of `markup` (Python source) grew a fresh process by, the CPU
    seconds it took, and the text's beginning."""
    run = subprocess.run(
        [sys.executable, "-c", _GROWTH.format(markup=markup)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    grew, took, text = run.stdout.split(" ", 2)
    return int(grew), float(took), eval(text)


def test_one_tag_of_a_million_attributes_takes_little_memory() -> None:
    """4 MB, one tag: HTMLParser built a list of a million attributes, then a dict (+770 MiB,
    the event loop frozen for 1.4 s by one scan)."""
    grew, took, text = _growth('"<html><body><p " + "a=b " * 1_000_000 + ">hi</p></body></html>"')
    assert text == "hi"
    assert grew < 100, f"reading it took {grew} MiB more"
    assert took < 10


def test_hidden_elements_nested_deep_take_no_memory() -> None:
    """Every hidden element of another name than the last was tracked: 250,000 pairs
    nested took ~70 MB (134 MB for 11 MB). Past MAX_DEPTH the rest is hidden."""
    grew, _, text = _growth("\"<p>shown</p>\" + '<span hidden><b hidden>' * 250_000 + 'lure'")
    assert text == "shown"
    assert grew < 25, f"reading it took {grew} MiB more"


@pytest.mark.parametrize("unit", ["</a ", "<?x "])
def test_unclosed_markup_is_read_in_linear_time(unit: str) -> None:
    """Python 3.11's HTMLParser scanned to the end of the input for each unclosed `</a` or
    `<?`: 400 KB took 8 s, 4 MB would take 14 minutes."""
    started = time.process_time()
    text = html_to_text("shown " + unit * 100_000)
    assert time.process_time() - started < 2
    assert text == "shown"  # never closed: it hides the rest, as in a browser (R131)


def test_padding_never_unhides_and_normal_markup_reads_as_before() -> None:
    """Attributes past the ones kept, or a value too long to keep, cannot push a hiding style
    out of sight; an inline image's data is dropped, its alt text kept."""
    lure = "Your account is locked: call +1 555 0100"
    for tag in (
        f'<div data-x="{"a" * 20_000}" style="display:none">',
        f'<div {"a=b " * 100} style="display:none">',
        f"<div {'a=b ' * 100} hidden>",
        f'<div style="{"color:red;" * 2_000}display:none">',
        '<div style="color:red" style="display:none">',
    ):
        page = f"<p>Weekly news</p>{tag}{lure}</div><p>Unsubscribe</p>"
        assert html_to_text(page) == "Weekly news\n\nUnsubscribe", tag[:40]
    image = f'<p>Chart:<img src="data:image/png;base64,{"A" * 100_000}" alt="sales"></p>'
    assert html_to_text(image) == "Chart:[image: sales]"
    background = f'<div style="background:url(data:image/png;base64,{"A" * 50_000})">Hi</div>'
    assert html_to_text(background) == "Hi"
    page = (
        "<!DOCTYPE html><html><head><title>T &amp; C</title><script>if (a < b) {}</script>"
        "</head><body><!-- note --><p class=x>Fish &amp; chips<br/>"
        "<a href='https://a.example/'>more</a></p><ul><li>one<li>two</ul></body></html>"
    )
    assert html_to_text(page, title=True, links=True) == (
        "# T & C\n\nFish & chips\n\nmore <https://a.example/>\n\n- one\n- two"
    )


def test_a_pdfs_text_stops_at_the_cap_naming_the_pages_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pdf_text, "MAX_PDF_TEXT", 250_000)
    extracted = pdf_text.read_pdf(text_pdf(12, b"A" * 100_000), 30.0)
    assert extracted.pages == 12
    assert len(extracted.text) < 251_000
    assert extracted.text.endswith(
        "[… page 3 cut short, and pages 4 to 12 not read: too much text]"
    )
    assert "[page 3]\n" + "A" * 50_000 in extracted.text


async def test_a_small_pdf_never_answers_megabytes_of_text() -> None:
    """48 KB, 300 pages drawing one stream of 990,000 characters: 53 MB of text in the inbox,
    +250 MiB in Steward, and parsing the child's JSON held the event loop for 278 ms."""
    raw = text_pdf(300, b"A" * 990_000)
    assert len(raw) < 60_000
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - started - 0.01)

    ticking = asyncio.create_task(ticker())
    try:
        extracted = await extract_text(raw, "pdf", seconds=20.0)
    finally:
        ticking.cancel()
    assert extracted.pages == 300
    assert len(extracted.text) <= pdf_text.MAX_PDF_TEXT + 1_000
    assert extracted.text.endswith("pages 6 to 300 not read: too much text]")
    assert max(lags) < 0.2


_TEXT = "Grüße, naïve café — €5\nsecond line"


@pytest.mark.parametrize(
    "raw",
    [
        _TEXT.encode("utf-16-le"),
        _TEXT.encode("utf-16-be"),
        _TEXT.encode("utf-16") + b"x",
        _TEXT.encode("utf-32"),
        b"\x00\x00\xfe\xff" + _TEXT.encode("utf-32-be"),
    ],
    ids=[
        "utf-16-le without BOM",
        "utf-16-be without BOM",
        "utf-16 odd length",
        "utf-32",
        "utf-32-be",
    ],
)
def test_utf16_and_utf32_texts_are_read(raw: bytes) -> None:
    """Refused as binary, failed with an uncaught UnicodeDecodeError, or read as UTF-16 with
    a NUL between every character."""
    assert _decode(raw).rstrip("\ufffd") == _TEXT


def test_a_binary_file_is_still_refused() -> None:
    for raw in (bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)):
        with pytest.raises(DocumentError, match="binary"):
            _decode(raw)
