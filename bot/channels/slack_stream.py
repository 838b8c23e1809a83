"""What a Slack stream shows of a reply while it grows (R202).

Slack's streaming methods (`chat.startStream` / `appendStream`, a direct message's preview) take
Markdown that is only ever added to, and no unfurl flags. Streamed as the model wrote it,
`[your invoice](https://evil.example/?d=PIN)` showed the label alone, its target hidden, where
the final post (formatting.py) writes "your invoice (<https://evil.example/?d=PIN>)". So the
stream is the model's Markdown with each link written as the final post writes it,
"label (url)", and nothing that could still become a link with a hidden target is sent:

- a link still being written (an open `[` on the last line) is held back until it is whole;
- from the first `](` or `]:` left (a link with a title, a URL with spaces or parentheses, a
  label over several lines, a reference definition) nothing more is streamed: the final post
  shows the rest. With no definition, `[label][ref]` or `[label]` is plain text.

Bidi embeddings, overrides and isolates are escaped as in the final post (R258).
"""

from __future__ import annotations

import re

from bot.channels.formatting import unreordered

__all__ = ["stream_markdown"]

_LINK = re.compile(r"!?\[([^\[\]\n]*)\]\(<?([^\s()<>]*)>?\)")
"""An inline link or image whose URL has no spaces or parentheses, and no title."""
_LINK_LEFT = re.compile(r"\]\(|\]:")
"""What starts any other link's target, or a reference definition."""
_SETTLED = re.compile(r"\[[^\[\]\n]*\][^(\[:]")
"""A bracket closed and followed by what makes it no link (`[1] says`, `- [ ] task`)."""


def _flat(link: re.Match[str]) -> str:
    label, url = link.group(1), link.group(2)
    if not url:
        return label
    if not label.strip() or label in (url, url.removeprefix("mailto:")):
        return url
    return f"{label} ({url})"


def stream_markdown(text: str) -> str:
    """What a stream may show of `text`, the reply so far: a prefix of what it shows once
    more is written, as far as that can be known (what is not is simply not streamed)."""
    shown = _LINK.sub(_flat, unreordered(text))
    if left := _LINK_LEFT.search(shown):
        shown = shown[: left.start()]
    at = shown.find("[", shown.rfind("\n") + 1)  # the line being written
    while at >= 0:
        settled = _SETTLED.match(shown, at)
        if settled is None:
            return shown[:at]
        at = shown.find("[", settled.end() - 1)
    return shown
