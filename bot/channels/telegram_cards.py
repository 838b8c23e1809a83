"""Telegram's approval card: HTML within Telegram's limit and its inline buttons (aiogram)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from agent.types import ApprovalPrompt, Press
from bot.channels.cards import TELEGRAM_CHOICES, card_of, html_escape
from bot.channels.formatting import TELEGRAM_LIMIT, utf16_len

__all__ = ["ApprovalButton", "telegram_card"]


class ApprovalButton(CallbackData, prefix="ap"):
    """An approval button's callback data: only the approval id and the choice (y / n / a)."""

    id: str
    d: str

    def press(self, message_id: str) -> Press:
        """The press this data stands for, on message `message_id`; KeyError for a choice
        letter no button has."""
        return Press(self.id, TELEGRAM_CHOICES[self.d], message_id)


def telegram_card(prompt: ApprovalPrompt) -> tuple[str, InlineKeyboardMarkup]:
    """The card as Telegram HTML (its visible text within Telegram's limit) and its buttons."""
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
        [
            InlineKeyboardButton(
                text="✅ Approve", callback_data=ApprovalButton(id=pid, d="y").pack()
            ),
            InlineKeyboardButton(
                text="❌ Deny", callback_data=ApprovalButton(id=pid, d="n").pack()
            ),
        ],
        [
            InlineKeyboardButton(
                text="Allow always", callback_data=ApprovalButton(id=pid, d="a").pack()
            )
        ],
    ]
    return body, InlineKeyboardMarkup(inline_keyboard=buttons)
