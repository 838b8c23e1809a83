"""A paragraph longer than a message is cut on a space outside any inline span, and a run with
no space at all between whole characters (R137: a cut inside `code` made most of the next
message code, with raw ** and [link](…) showing; a family emoji and a Devanagari syllable were
cut in two)."""

from __future__ import annotations

import re

from bot.channels.formatting import telegram_chunks, telegram_visible_text


def test_a_long_paragraph_is_never_cut_inside_code_bold_or_a_link() -> None:
    words = []
    for n in range(900):
        words.append(f"word{n}")
        if n % 7 == 3:
            words.append(f"`cmd --flag {n}`")
        if n % 11 == 5:
            words.append(f"**important point {n}**")
        if n % 13 == 8:
            words.append(f"[source {n}](https://example.com/{n})")
    for shift in range(0, 60, 7):  # the cut falls at many places
        text = "x" * shift + " " + " ".join(words)
        chunks = telegram_chunks(text)
        assert len(chunks) >= 2
        for chunk in chunks:
            shown = telegram_visible_text(chunk.markup)
            assert "**" not in shown and "](" not in shown and "`" not in shown, shown[:200]
            for code in re.findall(r"<code>(.*?)</code>", chunk.markup, re.S):
                assert code.startswith("cmd --flag"), code[:80]


def test_a_run_with_no_space_is_cut_between_whole_characters() -> None:
    family = "👨\u200d👩\u200d👧\u200d👦"
    for text in (family * 1500, "नमस्ते" * 1400):
        chunks = telegram_chunks(text)
        assert len(chunks) >= 2
        joined = "".join(telegram_visible_text(c.markup).strip() for c in chunks)
        assert joined == text
        for chunk in chunks[:-1]:
            end = telegram_visible_text(chunk.markup).strip()
            assert not end.endswith(("\u200d", "\u094d")), end[-3:]  # a joiner, a virama
