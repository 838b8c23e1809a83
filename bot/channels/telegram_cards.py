"""Telegram's approval card: HTML within Telegram's limit and its inline buttons.

A button's callback data is `ap:<approval id>:<choice letter>`, the format buttons have always
had (so buttons on cards sent before an upgrade still work): fields joined by `:`, at most 64
bytes. Callback data is client-controlled: `unpack` refuses anything
that is not exactly that shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.types import ApprovalPrompt, Press
from bot.channels.cards import TELEGRAM_CHOICES, card_of, html_escape
from bot.channels.formatting import TELEGRAM_LIMIT, utf16_len

__all__ = ["ApprovalButton", "telegram_card"]

_PREFIX = "ap"
_SEP = ":"
_MAX_BYTES = 64  # Telegram's limit for callback_data


@dataclass(frozen=True, slots=True)
class ApprovalButton:
    """An approval button's callback data: only the approval id and the choice (y / n / a)."""

    id: str
    d: str

    def pack(self) -> str:
        if _SEP in self.id or _SEP in self.d:
            raise ValueError("a callback data field may not contain ':'")
        packed = _SEP.join((_PREFIX, self.id, self.d))
        if len(packed.encode()) > _MAX_BYTES:
            raise ValueError("callback data is longer than 64 bytes")
        return packed

    @classmethod
    def unpack(cls, data: str) -> ApprovalButton:
        """The button `data` names; ValueError for any other shape."""
        prefix, *fields = data.split(_SEP)
        if prefix != _PREFIX or len(fields) != 2:
            raise ValueError("not an approval button's callback data")
        return cls(*fields)

    def press(self, message_id: str) -> Press:
        """The press this data stands for, on message `message_id`; KeyError for a choice
        letter no button has."""
        return Press(self.id, TELEGRAM_CHOICES[self.d], message_id)


def _button(text: str, approval_id: str, choice: str) -> dict[str, str]:
    return {"text": text, "callback_data": ApprovalButton(approval_id, choice).pack()}


def telegram_card(prompt: ApprovalPrompt) -> tuple[str, dict[str, Any]]:
    """The card as Telegram HTML (its visible text within Telegram's limit) and its buttons
    (an `InlineKeyboardMarkup`)."""
    card = card_of(prompt, limit=TELEGRAM_LIMIT - 64, measure=utf16_len)
    pid = prompt.approval_id
    markup = {
        "title": lambda _: f"<b>Approval needed</b> · <code>{html_escape(pid)}</code>",
        "tool": lambda text: f"<b>{html_escape(text)}</b>",
        "preview": lambda text: f"<pre>{html_escape(text)}</pre>",
        "more": lambda text: f"<i>{html_escape(text)}</i>",
        "reason": lambda text: f"<i>{html_escape(text)}</i>",
    }
    body = "\n\n".join(markup.get(kind, html_escape)(text) for kind, text in card.parts())
    buttons = [
        [_button("✅ Approve", pid, "y"), _button("❌ Deny", pid, "n")],
        [_button("Allow always", pid, "a")],
    ]
    return body, {"inline_keyboard": buttons}
