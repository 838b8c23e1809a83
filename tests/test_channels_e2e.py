"""`steward run` as a user runs it, with Telegram and Slack at once: a subprocess whose
TELEGRAM_API_BASE / SLACK_API_URL / ANTHROPIC_BASE_URL point at the loopback fakes. The tests
send real updates and signed events and assert what reaches the fake servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
from pathlib import Path

import aiohttp
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.slack import FakeSlack, event_body, message_event, post_signed
from fakes.telegram import FakeTelegram
from harness import free_port, said_last, steward_process

OWNER_TG, FRIEND_TG, STRANGER_TG = 1001, 3003, 2002
OWNER_SLACK = "UOWNER"
LONG = "\n\n".join(f"Part {i}. " + "lorem ipsum " * 150 for i in range(3))  # 3 x 1,800


def _env(data: Path, model: FakeAnthropic, tg: FakeTelegram, sl: FakeSlack, **extra: str):  # type: ignore[no-untyped-def]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "STEWARD_", "TELEGRAM_", "SLACK_"))
    }
    env |= {
        "STEWARD_DATA_DIR": str(data),
        "STEWARD_LOG_LEVEL": "INFO",
        "STEWARD_OWNER": f"telegram:{OWNER_TG},slack:{OWNER_SLACK}",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": model.base_url,
        "STEWARD_MODEL_RETRIES": "0",
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE": tg.base_url,
        "TELEGRAM_ALLOWED_USERS": str(FRIEND_TG),
        "SLACK_BOT_TOKEN": sl.bot_token,
        "SLACK_API_URL": sl.api_url,
        "STEWARD_HTTP_HOST": "127.0.0.1",
        "STEWARD_HTTP_PORT": str(free_port()),
    }
    return env | extra


async def _until_listening(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    """Start-up imports slack-bolt and the SDKs (seconds on a busy 2-core machine): allow 60 s."""
    deadline = asyncio.get_running_loop().time() + 60
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            assert process.returncode is None, "steward exited; see " + str(log)
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"the webhook server never came up; see {log}")


def _model(request: RecordedRequest) -> Reply:
    if request.tool_results:
        return Reply.text("Posted the status note.")
    text = said_last(request)
    if "post the status" in text:
        return Reply.tool_use(
            "send_message", {"channel": "slack", "chat": "C0STATUS", "text": "All **green**"}
        )
    if "write a lot" in text:
        return Reply.text(LONG)
    if "format" in text:
        return Reply.text("**Plan**: ship <it> & rest")
    return Reply.text("re: " + text)


async def test_one_process_serves_telegram_and_slack_with_replies_splits_and_strangers(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    async with FakeTelegram() as tg, FakeSlack() as sl:
        env = _env(tmp_path / "data", fake_model, tg, sl, SLACK_SIGNING_SECRET=sl.signing_secret)
        log = tmp_path / "steward.log"
        base = f"http://127.0.0.1:{env['STEWARD_HTTP_PORT']}"
        async with steward_process(env, log) as process:
            await _until_listening(f"{base}/healthz", process, log)
            await tg.wait_for("getUpdates", timeout=60)

            # Telegram: an answer in HTML
            tg.push_message("format this", user_id=OWNER_TG)
            (reply,) = await tg.wait_for("sendMessage", timeout=10)
            assert reply.params["parse_mode"] == "HTML"
            assert reply.result["text"] == "Plan: ship <it> & rest"

            # Slack, same process: a DM answered in its thread
            event = message_event("hello from slack", user=OWNER_SLACK, channel="DOWNER")
            status, _ = await post_signed(
                f"{base}/slack/events", sl.signing_secret, json_body=event_body(event)
            )
            assert status == 200
            (post,) = await sl.wait_for("chat.postMessage", timeout=10)
            assert post.params["text"] == "re: hello from slack"
            assert post.params["thread_ts"] == event["ts"]

            # a long answer arrives in parts, each under Telegram's limit
            tg.push_message("write a lot", user_id=OWNER_TG)
            calls = await tg.wait_for("sendMessage", 3, timeout=10)
            parts = [c.result["text"] for c in calls[1:]]
            assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
            assert parts[0].startswith("Part 0.") and "\n\nPart 1." in parts[0]
            assert parts[1].startswith("Part 2.")

            # a reply Telegram rejects for its entities is re-sent as plain text
            tg.reject_entities_next()
            tg.push_message("format again", user_id=OWNER_TG)
            calls = await tg.wait_for("sendMessage", 5, timeout=10)
            assert (calls[3].status, calls[4].status) == (400, 200)
            assert calls[4].params["text"] == "Plan: ship <it> & rest"  # as the HTML shows it

            # a stranger is refused once; the owner hears about it once
            tg.push_message("let me in", user_id=STRANGER_TG, first_name="Mallory")
            tg.push_message("please", user_id=STRANGER_TG, first_name="Mallory")
            await tg.wait_for("sendMessage", 7, timeout=10)
            await asyncio.sleep(0.5)
            (refusal,) = tg.sent_texts(STRANGER_TG)
            assert f"telegram:{STRANGER_TG}" in refusal
            notice = tg.sent_texts(OWNER_TG)[-1]
            assert "Mallory" in notice and f"/allow telegram:{STRANGER_TG}" in notice
            sl_stranger = message_event("hi", user="UMALLORY", channel="DMAL")
            await post_signed(
                f"{base}/slack/events", sl.signing_secret, json_body=event_body(sl_stranger)
            )
            await sl.wait_for("chat.postMessage", 3, timeout=10)  # refusal + owner's note
            assert "slack:UMALLORY" in sl.posted("DMAL")[0].params["text"]

            # the allowlisted friend is answered
            tg.push_message("hi, friend here", user_id=FRIEND_TG)
            await tg.wait_for("sendMessage", 8, timeout=10)
            assert tg.sent_texts(FRIEND_TG) == ["re: hi, friend here"]
        assert process.returncode == 0, log.read_text()
    asked = " ".join(r.last_user_text for r in fake_model.requests)
    assert "let me in" not in asked and "UMALLORY" not in asked
    with sqlite3.connect(tmp_path / "data" / "steward.db") as db:
        refused = db.execute(
            "SELECT actor FROM audit_events WHERE kind = 'stranger.refused' ORDER BY id"
        ).fetchall()
    assert refused == [
        (f"telegram:{STRANGER_TG}",),
        (f"telegram:{STRANGER_TG}",),
        ("slack:UMALLORY",),
    ]


async def test_an_approval_pressed_by_the_wrong_person_is_refused_and_the_owner_decides(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    async with FakeTelegram() as tg, FakeSlack() as sl:
        env = _env(tmp_path / "data", fake_model, tg, sl, SLACK_APP_TOKEN=sl.app_token)
        log = tmp_path / "steward.log"
        async with steward_process(env, log) as process:
            await tg.wait_for("getUpdates", timeout=60)
            await sl.wait_socket_connected(timeout=60)

            tg.push_message("please post the status to slack", user_id=OWNER_TG)
            (prompt,) = await tg.wait_for("sendMessage", timeout=10)
            buttons = prompt.params["reply_markup"]["inline_keyboard"]
            approve = buttons[0][0]["callback_data"]
            match = re.fullmatch(r"ap:([a-z0-9]{4}):y", approve)
            assert match, approve
            approval_id = match[1]
            message_id = prompt.result["message_id"]

            # a stranger's press is refused by the router and audited
            tg.push_callback(approve, user_id=STRANGER_TG, chat_id=OWNER_TG, message_id=message_id)
            # an allowed user who is not an approver is refused by the approval check
            tg.push_callback(approve, user_id=FRIEND_TG, chat_id=OWNER_TG, message_id=message_id)
            await tg.wait_for("answerCallbackQuery", 2, timeout=10)
            await tg.wait_for("sendMessage", 3, timeout=10)
            await asyncio.sleep(0.3)
            assert sl.posted("C0STATUS") == []

            # the owner's press runs it: the note reaches Slack and the prompt shows the decision
            tg.push_callback(approve, user_id=OWNER_TG, chat_id=OWNER_TG, message_id=message_id)
            (note,) = await sl.wait_for("chat.postMessage", timeout=10)
            assert note.params["channel"] == "C0STATUS"
            assert note.params["text"] == "All *green*"
            edit = (await tg.wait_for("editMessageText", timeout=10))[0]
            assert "decided by the owner" in edit.params["text"]
            assert "reply_markup" not in tg.messages[(OWNER_TG, message_id)]
        assert process.returncode == 0, log.read_text()
    with sqlite3.connect(tmp_path / "data" / "steward.db") as db:
        presses = db.execute(
            "SELECT messages.text, identities.platform_user_id FROM messages"
            " JOIN identities ON identities.user_id = messages.user_id"
            " WHERE direction = 'in' AND messages.text LIKE '/approve%'"
            " AND identities.channel = 'telegram' ORDER BY messages.id"
        ).fetchall()
        status = db.execute("SELECT status FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        refused = db.execute(
            "SELECT actor FROM audit_events WHERE kind = 'stranger.refused'"
        ).fetchall()
        refused_decider = db.execute(
            "SELECT actor FROM audit_events WHERE kind = 'approval.refused_decider'"
        ).fetchall()
    assert presses == [
        (f"/approve {approval_id}", str(FRIEND_TG)),
        (f"/approve {approval_id}", str(OWNER_TG)),
    ]
    assert status == ("executed",)
    assert refused == [(f"telegram:{STRANGER_TG}",)]
    assert "Only the owner can decide approval requests." in tg.sent_texts(OWNER_TG)
    assert refused_decider == [(f"telegram:{FRIEND_TG}",)]


async def test_a_channel_that_fails_to_start_is_reported_and_the_others_keep_running(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    async with FakeTelegram() as tg, FakeSlack() as sl:
        env = _env(
            tmp_path / "data",
            fake_model,
            tg,
            sl,
            TELEGRAM_BOT_TOKEN="999:refused-token",
            SLACK_APP_TOKEN=sl.app_token,
        )
        log = tmp_path / "steward.log"
        async with steward_process(env, log) as process:
            await sl.wait_socket_connected(timeout=60)
            (note,) = await sl.wait_for("chat.postMessage", timeout=10)
            event = message_event("still there?", user=OWNER_SLACK, channel="DOWNER")
            await sl.wait_ack(await sl.send_envelope("events_api", event_body(event)))
            await sl.wait_for("chat.postMessage", 2, timeout=10)
        assert process.returncode == 0, log.read_text()
    text = log.read_text()
    assert "the telegram channel did not start: Telegram refused TELEGRAM_BOT_TOKEN" in text
    assert "refused-token" not in text
    assert note.params["channel"] == OWNER_SLACK
    assert "telegram channel did not start" in note.params["text"]
    assert sl.posted("DOWNER")[0].params["text"] == "re: still there?"
    assert tg.calls_to("getUpdates") == []
    assert json.dumps(fake_model.requests[0].body).count("still there?") >= 1
