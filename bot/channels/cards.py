"""How each channel shows an approval card (its text comes from `agent.cards.render_card`).

Every part of a card is escaped there; here it is only put in each platform's markup, within
each platform's limit, and given its buttons. A button carries the approval id and the choice
only; a press becomes a typed `Press` with the id of the message that was pressed added, which
the approval command checks against the card the approval was sent in. Telegram's cards are
in `telegram_cards`, beside the Telegram channel.
"""

from __future__ import annotations

import html
from typing import Any

from agent.cards import Card, render_card
from agent.types import ApprovalPrompt, Choice
from bot.channels.formatting import utf16_len

__all__ = [
    "SLACK_ACTIONS",
    "TELEGRAM_CHOICES",
    "card_of",
    "console_card",
    "html_escape",
    "slack_card",
    "slack_escape",
    "slack_marked",
]

SLACK_SECTION_LIMIT = 3000
"""Slack refuses a section block whose text is longer."""

TELEGRAM_CHOICES = {"y": Choice.APPROVE, "n": Choice.DENY, "a": Choice.ALWAYS}
"""The choice letter in a Telegram button's callback data (64 bytes at most)."""
SLACK_ACTIONS = {
    "approval_approve": Choice.APPROVE,
    "approval_deny": Choice.DENY,
    "approval_always": Choice.ALWAYS,
}
"""A Slack button's `action_id`; its `value` is the approval id."""


def card_of(prompt: ApprovalPrompt, **limits: Any) -> Card:
    return render_card(prompt.tool, prompt.preview, prompt.reason, prompt.approval_id, **limits)


def html_escape(text: str) -> str:
    return html.escape(text, quote=False)


# ------------------------------------------------------------------------- Slack


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_card(prompt: ApprovalPrompt) -> tuple[str, list[dict[str, Any]]]:
    """The card as Block Kit (the section within Slack's limit) and its notification text."""
    card = card_of(
        prompt, limit=SLACK_SECTION_LIMIT - 200, measure=lambda s: utf16_len(slack_escape(s))
    )
    pid = prompt.approval_id
    lines = [f"*Approval needed* `{slack_escape(pid)}`: *{slack_escape(card.tool)}*"]
    for kind, text in card.parts():
        shown = slack_escape(text)
        if kind == "preview":
            lines.append("```" + shown.replace("```", "ˋˋˋ") + "```")
        elif kind == "more":
            lines.append(f"_{shown}_")
        elif kind == "warning":
            lines.append(shown)
    context = " · ".join(
        part
        for part in (slack_escape(card.reason), f"or type `/approve {pid}` / `/deny {pid}`")
        if part
    )
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        {
            "type": "actions",
            "block_id": f"approval:{pid}",
            "elements": [
                _button("Approve", "approval_approve", pid, "primary"),
                _button("Deny", "approval_deny", pid, "danger"),
                _button("Allow always", "approval_always", pid, None),
            ],
        },
    ]
    return f"Approval needed {pid}: {slack_escape(card.tool)}", blocks


def slack_marked(text: str) -> list[dict[str, Any]]:
    """The blocks of a decided card: the decision, within the section limit, cut honestly."""
    shown = slack_escape(text)
    limit = SLACK_SECTION_LIMIT - 100
    if len(shown) > limit:
        shown = f"{shown[:limit]}… ({len(shown) - limit:,} more characters hidden)"
    return [{"type": "section", "text": {"type": "mrkdwn", "text": shown}}]


def _button(label: str, action_id: str, value: str, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


# ------------------------------------------------------------------------- console


def console_card(prompt: ApprovalPrompt) -> str:
    """The whole card as plain text: a terminal has no limit to keep to."""
    return card_of(prompt).text
