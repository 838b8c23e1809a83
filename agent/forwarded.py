"""What an incoming message brings from elsewhere, made safe to show the model (R257).

- `FromElsewhere`: a reply to a message in another chat (Telegram's "Reply in another chat").
  When nothing of that message can be brought in (a person's message neither quoted nor with
  files, a video, Steward's own message in a chat the platform does not name), the turn says
  so in a line (`unseen`) instead of dropping the reply's point without a word.
- `masked` / `masked_answered`: an approval id still pending, wherever it appears in outside
  text (a forward, a share, a quote, a thread), is replaced: a card forwarded or quoted back
  to Steward by a path the channels do not recognise still shows the model no id (README:
  "Approval ids never appear in anything the model reads").
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace

from agent.attachments import Answered
from agent.replies import ELSEWHERE, QuotedAnswer, Quoting
from memory.labels import TRUSTED

__all__ = ["HIDDEN_ID", "FromElsewhere", "masked", "masked_answered", "unseen"]

HIDDEN_ID = "[approval id]"


@dataclass(frozen=True)
class FromElsewhere(Quoting):
    """A reply to a message in another chat: what the platform tells of it (its quote, its
    files, whose it is) and, when it carries what Steward does not open, that kind
    (`unread`: "a video")."""

    unread: str | None = None


def unseen(ref: object) -> Answered | None:
    """The line a turn gets for a reply to a message in another chat of which nothing could
    be brought in; None for any other reply (a same-chat reply left out is left out)."""
    if not isinstance(ref, FromElsewhere):
        return None
    if ref.by_bot:  # Steward's own, not in the log (a card among them): never its text
        return Answered("(not shown here)", TRUSTED, None, "a message of yours in another chat")
    what = f"({ref.unread}, which I cannot open)" if ref.unread else "(which I cannot see)"
    return Answered(what, TRUSTED, None, ELSEWHERE)


def masked(text: str, ids: Collection[str]) -> str:
    """`text` with each of `ids` (as a word, in any case) replaced by `HIDDEN_ID`."""
    if not ids or not text:
        return text
    words = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return re.sub(rf"(?<![A-Za-z0-9])(?:{words})(?![A-Za-z0-9])", HIDDEN_ID, text, flags=re.I)


def masked_answered(answered: Answered, ids: Collection[str]) -> Answered:
    """The answered message (its quote, a thread's every message) with `ids` masked."""
    if not ids:
        return answered
    found = replace(
        answered,
        text=masked(answered.text, ids),
        thread=tuple(masked_answered(part, ids) for part in answered.thread),
    )
    if isinstance(found, QuotedAnswer):
        found = replace(found, quote=masked(found.quote, ids))
    return found
