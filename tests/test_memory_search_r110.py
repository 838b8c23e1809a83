"""Words of scripts whose letters carry combining marks, typed exactly as saved (R110)."""

from __future__ import annotations

from pathlib import Path

from harness import running_steward

from memory.longterm.terms import fts_query, query_terms


def test_a_word_keeps_its_vowel_signs_and_marks() -> None:
    """Python's `\\w` splits "दिल्ली" at its vowel signs and virama into single letters, which
    were dropped: nothing was searched for."""
    assert query_terms("मेरी बहन प्रिया दिल्ली में") == ["मेरी", "बहन", "प्रिया", "दिल्ली", "में"]
    assert query_terms("சென்னையில் வசிக்கிறாள்") == ["சென்னையில்", "வசிக்கிறாள்"]
    assert fts_query("İstanbul") == '"i\u0307stanbul"'


async def test_words_typed_exactly_in_any_script_find_their_memory(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, STEWARD_EMBEDDER="none") as h:
        for text in (
            "मेरी बहन प्रिया दिल्ली में रहती है",
            "என் தங்கை சென்னையில் வசிக்கிறாள்",
            "Kız kardeşim İstanbul'da oturuyor",
        ):
            assert "Remembered" in await h.say(f"/remember {text}")
        for word, found in (
            ("दिल्ली", "दिल्ली में"),
            ("प्रिया", "प्रिया"),
            ("சென்னையில்", "சென்னையில்"),
            ("İstanbul", "İstanbul'da"),
        ):
            assert found in await h.say(f"/memory search {word}"), word
