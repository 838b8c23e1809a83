"""What Steward sends, as the real Telegram / slack-sdk clients put it on the wire (to the fakes):
no link previews or unfurls, links with their URL in view, cards that hide nothing, approval ids
only for the owner, and a button press that decides only its own card."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.slack import FakeSlack, block_actions_payload, message_event, post_signed
from fakes.telegram import ApiCall, FakeTelegram
from harness import OWNER, Harness, running_steward
from test_slack import DM, OWNER_SLACK, _event, slack_steward
from test_telegram import OWNER_TG, _channel, telegram
from trust_world import instruction, obedient_model

from agent.cards import render_preview
from agent.types import ApprovalPrompt
from bot.channels.console import CONSOLE_ADDRESS, ConsoleChannel
from bot.channels.telegram import TelegramChannel
from bot.commands.access import apply_allowlists
from bot.commands.approvals import NOT_YOURS, WRONG_CARD
from memory.people import Identity

FRIEND_TG = 3003
GROUP = -1001234567890
LINK_REPLY = "Done. Details in [the summary](https://evil.example/?d=PIN)."
SHOWN_LINK = "the summary (https://evil.example/?d=PIN)"


def _model(request: RecordedRequest) -> Reply:
    """Obeys every instruction; with nothing left to do, answers with a Markdown link."""
    reply = obedient_model(request)
    return Reply.text(LINK_REPLY) if reply.content == [{"type": "text", "text": "ok"}] else reply


async def _until(check: Callable[[], Any], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 (polls the fakes' records)
            await asyncio.sleep(0.05)


def _post(text: str) -> str:
    """A post to a group: that asks (a post to the owner's own chat may be allowed)."""
    return instruction("send_message", {"channel": "telegram", "text": text, "chat": str(GROUP)})


def _shown(tg: FakeTelegram, chat_id: int) -> list[str]:
    """The texts as Telegram shows them in a chat (markup parsed), sent or edited."""
    return [
        str(c.result["text"])
        for c in tg.calls
        if c.method in ("sendMessage", "editMessageText")
        and c.status == 200
        and isinstance(c.result, dict)
        and c.result["chat"]["id"] == chat_id
    ]


def _approve_data(card: ApiCall) -> str:
    return card.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]


def _approval_id(card: ApiCall) -> str:
    return _approve_data(card).split(":")[1]


async def _status(h: Harness, approval_id: str) -> str:
    approval = await h.steward.stores.approvals.get(approval_id)
    return str(approval.status if approval else None)


def _failed_out(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "steward.db") as db:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'failed'"
            ).fetchone()[0]
        )


@asynccontextmanager
async def _with_friend(
    tmp_path: Path, model: FakeAnthropic, tg: FakeTelegram
) -> AsyncIterator[tuple[Harness, TelegramChannel]]:
    async with running_steward(
        tmp_path, model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        await apply_allowlists(h.steward.stores, [Identity("telegram", str(FRIEND_TG))])
        channel = _channel(tg, h)
        h.steward.switchboard.register(channel.name, channel)
        await channel.start(h.router.dispatch)
        try:
            yield h, channel
        finally:
            await channel.stop()


# ------------------------------------------------------------------------- Telegram


async def test_every_telegram_send_and_edit_has_link_previews_off_and_links_show_their_url(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg, send_attempts=1) as (h, _):
        tg.push_message(_post("Look at https://evil.example/x?d=1"), user_id=OWNER_TG)
        (card,) = await tg.wait_for("sendMessage", timeout=10)  # the approval card
        message_id = card.result["message_id"]
        tg.push_callback(
            _approve_data(card), user_id=OWNER_TG, chat_id=OWNER_TG, message_id=message_id
        )
        await tg.wait_for("editMessageText", timeout=10)  # the card marked decided
        await _until(lambda: any(SHOWN_LINK in t for t in _shown(tg, OWNER_TG)))

        tg.fail_next("sendMessage", status=502, description="Bad Gateway")
        tg.push_message("/status", user_id=OWNER_TG)
        await _until(lambda: _failed_out(tmp_path) == 1)
        assert await h.steward.courier.redeliver() == 1  # sent again, by the same path

    sends = tg.calls_to("sendMessage")
    edits = tg.calls_to("editMessageText")
    assert len(sends) >= 5 and len(edits) == 1
    assert [c.status for c in sends].count(502) == 1
    for call in [*sends, *edits]:
        assert call.params.get("link_preview_options") == {"is_disabled": True}, call.params
        assert "disable_web_page_preview" not in call.params
    reply = next(c for c in sends if c.status == 200 and SHOWN_LINK in c.result["text"])
    (link,) = [e for e in reply.result["entities"] if e["type"] == "text_link"]
    start, end = link["offset"], link["offset"] + link["length"]
    assert reply.result["text"][start:end] == link["url"] == "https://evil.example/?d=PIN"


async def test_a_padded_card_is_cut_honestly_and_approve_show_gives_the_whole_text(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    lines = [f"line {i:02d} " + "x" * 150 for i in range(40)]
    text = "Weekly note\n" + "\u200b" * 5000 + "\n".join(lines) + "\nPAYLOAD-END wire it all"
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as (h, _):
        tg.push_message(_post(text), user_id=OWNER_TG)
        (card,) = await tg.wait_for("sendMessage", timeout=10)
        approval_id = _approval_id(card)
        shown = card.result["text"]
        tg.push_message(f"/approve show {approval_id}", user_id=OWNER_TG)
        await _until(lambda: sum("PAYLOAD-END" in t for t in _shown(tg, OWNER_TG)) == 2)
        await asyncio.sleep(0.2)
        assert await _status(h, approval_id) == "pending"
    assert "\u200b" not in shown and "[\\u200b ×5,000]" in shown
    assert "PAYLOAD-END wire it all" in shown  # the end stays in view
    hidden = re.search(r"… ([\d,]+) more characters hidden — /approve show (\w+) shows all", shown)
    assert hidden and hidden[2] == approval_id
    head, tail = [  # the preview's beginning and end, each in a <pre>
        shown[e["offset"] : e["offset"] + e["length"]]
        for e in card.result["entities"]
        if e["type"] == "pre"
    ]
    whole = "".join(render_preview(f"Post to telegram ({GROUP}):\n{text}")[0])
    assert whole.startswith(head) and whole.endswith(tail)
    assert int(hidden[1].replace(",", "")) == len(whole) - len(head) - len(tail)
    assert any(line not in shown for line in lines)

    everything = "\n".join(_shown(tg, OWNER_TG)[1:])
    assert len(_shown(tg, OWNER_TG)) >= 3, "a long preview arrives in several messages"
    assert all(line in everything for line in lines)
    assert "[\\u200b ×5,000]" in everything and "PAYLOAD-END wire it all" in everything
    assert "\u200b" not in everything


async def test_only_the_owner_sees_pending_approvals(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    async with FakeTelegram() as tg, _with_friend(tmp_path, fake_model, tg) as (h, _):
        tg.push_message(_post("status: all green"), user_id=OWNER_TG)
        (card,) = await tg.wait_for("sendMessage", timeout=10)
        approval_id = _approval_id(card)
        tg.push_message("/approve", user_id=FRIEND_TG)
        await tg.wait_for("sendMessage", 2, timeout=10)
        tg.push_message(f"/approve show {approval_id}", user_id=FRIEND_TG)
        await tg.wait_for("sendMessage", 3, timeout=10)
        tg.push_message("/approve", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", 4, timeout=10)
        refusals = await h.steward.stores.audit.recent(kind="approval.list_refused")
        assert await _status(h, approval_id) == "pending"
    assert tg.sent_texts(FRIEND_TG) == [NOT_YOURS, NOT_YOURS]
    assert [e.actor for e in refusals] == [f"telegram:{FRIEND_TG}"] * 2
    listing = tg.sent_texts(OWNER_TG)[-1]
    assert listing.startswith("Waiting for your approval:") and approval_id in listing


async def test_a_press_on_one_card_with_another_cards_data_runs_nothing_and_is_audited(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as (h, _):
        tg.push_message(_post("first note") + "\n" + _post("second note"), user_id=OWNER_TG)
        card_a, card_b = await tg.wait_for("sendMessage", 2, timeout=10)
        id_a, id_b = _approval_id(card_a), _approval_id(card_b)
        on_a = {"user_id": OWNER_TG, "chat_id": OWNER_TG, "message_id": card_a.result["message_id"]}
        tg.push_callback(_approve_data(card_b), **on_a)  # B's button data, pressed on card A
        await _until(lambda: WRONG_CARD in tg.sent_texts(OWNER_TG))
        wrong = await h.steward.stores.audit.recent(kind="approval.wrong_card")
        assert (await _status(h, id_a), await _status(h, id_b)) == ("pending", "pending")
        assert not await h.steward.stores.audit.recent(kind="tool.ran")
        assert tg.calls_to("editMessageText") == []

        # B's own card decides B; a typed /approve from the owner still decides A
        on_b = {"user_id": OWNER_TG, "chat_id": OWNER_TG, "message_id": card_b.result["message_id"]}
        tg.push_callback(_approve_data(card_b), **on_b)
        await tg.wait_for("editMessageText", timeout=10)
        tg.push_message(f"/approve {id_a}", user_id=OWNER_TG)
        await tg.wait_for("editMessageText", 2, timeout=10)
        await _until(lambda: "first note" in tg.sent_texts(GROUP))
        statuses = (await _status(h, id_a), await _status(h, id_b))
    assert [(e.subject, e.actor) for e in wrong] == [(id_b, f"telegram:{OWNER_TG}")]
    assert statuses == ("executed", "executed")
    edited = [c.params["message_id"] for c in tg.calls_to("editMessageText")]
    assert edited == [str(card_b.result["message_id"]), str(card_a.result["message_id"])]


# ------------------------------------------------------------------------- Slack


async def test_every_slack_post_and_update_is_unfurl_free_and_presses_are_bound_to_their_card(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)

    def order(text: str) -> str:
        return instruction("send_message", {"channel": "slack", "text": text, "chat": "C0STATUS"})

    async def press(card: Any, value: str) -> None:
        payload = block_actions_payload(
            "approval_approve",
            value,
            user_id=OWNER_SLACK,
            channel_id=DM,
            message_ts=card.result["ts"],
        )
        form = {"payload": json.dumps(payload)}
        assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200

    def texts() -> list[str]:
        return [str(c.params.get("text")) for c in slack.posted(DM)]

    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        event = message_event(
            order("see https://evil.example/a") + "\n" + order("b"), user=OWNER_SLACK, channel=DM
        )
        assert await _event(url, slack, event) == 200
        card_a, card_b = await slack.wait_for("chat.postMessage", 2, timeout=10)
        values = [
            next(b for b in c.params["blocks"] if b["type"] == "actions")["elements"][0]["value"]
            for c in (card_a, card_b)
        ]
        await press(card_a, values[1])  # B's value on card A
        await _until(lambda: WRONG_CARD in texts())
        assert await _status(h, values[1]) == "pending"
        await press(card_a, values[0])
        await press(card_b, values[1])
        await slack.wait_for("chat.update", 2, timeout=10)
        await _until(
            lambda: any("the summary (<https://evil.example/?d=PIN>)" in t for t in texts())
        )

        slack.fail_next("chat.postMessage", "internal_error")
        hello = message_event("hello", user=OWNER_SLACK, channel=DM)
        assert await _event(url, slack, hello) == 200
        await _until(lambda: _failed_out(tmp_path) == 1)
        assert await h.steward.courier.redeliver() == 1
        wrong = await h.steward.stores.audit.recent(kind="approval.wrong_card")

    assert [e.subject for e in wrong] == [values[1]]
    calls = [*slack.calls_to("chat.postMessage"), *slack.calls_to("chat.update")]
    assert len(calls) >= 8
    for call in calls:
        assert call.params.get("unfurl_links") is False, call.params
        assert call.params.get("unfurl_media") is False, call.params


# ------------------------------------------------------------------------- console


@pytest.mark.parametrize("nasty", ["\x1b[2K\rall fine", "ok \u202eexe.txt", "\x9b31m red"])
async def test_the_console_never_prints_a_control_or_bidi_character_raw(nasty: str) -> None:
    out = io.StringIO()
    console = ConsoleChannel(stdin=io.StringIO(""), stdout=out)
    await console.send_text(CONSOLE_ADDRESS, nasty)
    await console.send_approval(
        CONSOLE_ADDRESS, ApprovalPrompt("k3f9", "shell", f"echo {nasty}", f"asks {nasty}")
    )
    await console.mark_approval(CONSOLE_ADDRESS, "1", f"k3f9 denied {nasty}")
    printed = out.getvalue()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", printed)
    assert printed.count("\\x1b") + printed.count("\\u202e") + printed.count("\\x9b") >= 4
    assert "Approval needed · k3f9" in printed


async def test_the_console_tells_a_decision_made_elsewhere_and_not_one_typed_there() -> None:
    """A card decided in the web console was never said at the terminal (the card gave the
    console no id to mark), so approved and denied looked the same there (R138); one decided
    by a line typed at the terminal is answered by that line alone."""
    out = io.StringIO()
    console = ConsoleChannel(stdin=io.StringIO(""), stdout=out)
    asked = await console.send_approval(
        CONSOLE_ADDRESS, ApprovalPrompt("k3f9", "shell", "ls", "asks")
    )
    assert asked == "k3f9"
    await console.mark_approval(CONSOLE_ADDRESS, "k3f9", "Denied k3f9: shell. (decided by web)")
    assert "Denied k3f9: shell. (decided by web)" in out.getvalue()

    async def answered(message: object) -> None:
        return None

    console._submit("/approve K3F9", answered)  # a line typed at the terminal
    before = out.getvalue()
    await console.mark_approval(CONSOLE_ADDRESS, "k3f9", "Approved k3f9: shell ran.")
    assert out.getvalue() == before


async def test_piped_input_with_a_byte_the_locale_cannot_decode_loses_no_line() -> None:
    """R141: read strictly (a UTF-8 locale), one latin-1 byte ended the input as if it were
    over: every line unanswered, and `steward run` exited 0."""
    stdin = io.TextIOWrapper(
        io.BytesIO(b"first line\ncaf\xe9 latin1\nthird line\n"), encoding="utf-8", errors="strict"
    )
    console = ConsoleChannel(stdin=stdin, stdout=io.StringIO())
    got: list[str] = []

    async def dispatch(message: Any, **_: Any) -> None:
        got.append(message.text)

    await console.start(dispatch)
    await asyncio.wait_for(console.finished.wait(), 10)
    await console.stop()
    assert got == ["first line", "caf\ufffd latin1", "third line"]
