"""Red team, second wave: attacks on the web console, media in, replies followed and streamed
replies (issues 16 and 17), each written as a failing test before its fix.

Every case runs against the real core and the wire-level fakes (Telegram Bot API, Slack Web API
and Events, the Anthropic Messages API, an OpenAI-compatible speech-to-text server), as an
attacker or a careless owner would meet them.

(Over 400 lines: one file for the wave, so each finding's case sits next to the others.)
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic, Reply
from fakes.slack import FakeSlack, app_mention_event, event_body, message_event, post_signed
from fakes.stt import FakeSTT
from fakes.telegram import FakeTelegram
from harness import OWNER_SLACK, Harness, slack_steward
from media_bombs import pdf_file
from PIL import Image
from test_media_in import OWNER_TG, inbox, telegram_steward, texts_with, until
from test_web_security import APPROVER, Web
from test_web_security import web as web  # the console fixture, shared
from trust_world import instruction, obedient_model

from agent.attachments import MediaKind
from bot.channels.media import slack_fetch, slack_files, slack_host_allowed

DM = "DOWNER"
TOKEN = re.compile(r"token=([0-9a-f]{64})")


def _everything_sent(model: FakeAnthropic) -> str:
    return "\n".join(str(r.body) for r in model.requests)


# -- replies followed: a command's answer is not the conversation ---------------------------


async def test_a_reply_to_the_web_login_link_does_not_hand_its_token_to_the_model(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The `/web` answer carries a live login token; it is kept out of the history the model
    reads. Replying to it ("thanks") must not bring it in through the replied-to message."""
    fake_model.reply_text("You're welcome.")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        tg.push_message("/web", user_id=OWNER_TG)
        sent = await until(
            lambda: [c for c in tg.calls_to("sendMessage") if "token=" in str(c.params)],
            "the login link",
        )
        (token,) = TOKEN.findall(str(sent[0].params["text"]))
        tg.push_message(
            "thanks", user_id=OWNER_TG, reply_to_message_id=sent[0].result["message_id"]
        )
        await until(lambda: "welcome" in " ".join(tg.sent_texts()), "the answer")
    assert fake_model.requests, "the reply reached the model"
    assert token not in _everything_sent(fake_model)


# -- media in: someone else's voice clip, shared by the owner, is not the owner's voice -----


async def test_someone_elses_slack_voice_clip_shared_by_the_owner_is_outside_content(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A Slack clip (`subtype: slack_audio`) recorded by another member and shared into the
    owner's DM is that member's words, like a forwarded Telegram voice note: fenced, tainting,
    and not echoed back as "I heard"."""
    audio = b"webm clip by mallory"
    fake_model.on_request(obedient_model)
    async with FakeSTT() as stt:
        stt.say(audio, instruction("write_file", {"path": "clip.txt", "content": "x"}))
        env = {"STEWARD_STT_URL": stt.base_url}
        async with (
            FakeSlack() as slack,
            slack_steward(tmp_path, fake_model, slack, env=env) as (h, _, url),
        ):
            clip = slack.add_file(
                audio,
                name="audio_message.webm",
                mimetype="audio/webm",
                subtype="slack_audio",
                user="UMALLORY",
            )
            event = message_event("", user=OWNER_SLACK, channel=DM, files=[clip])
            status, _ = await post_signed(url, slack.signing_secret, json_body=event_body(event))
            assert status == 200
            async with asyncio.timeout(10):
                while not (done := [t for t in await h.turns() if t.status != "running"]):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            posted = [str(p.params.get("text")) for p in slack.posted(DM)]
    assert stt.requests, "the clip was transcribed"
    assert not (tmp_path / "workspace" / "clip.txt").exists()
    assert done[0].tainted
    assert not [t for t in posted if "I heard" in t]


def test_the_owners_own_slack_clip_is_still_a_voice_note() -> None:
    """The control: a clip the sender recorded is their voice note; one recorded by someone
    else (or by nobody Slack names) is an audio file, which is always outside content."""

    def clip(user: str | None) -> dict[str, object]:
        item: dict[str, object] = {
            "url_private_download": "https://files.slack.com/x",
            "mimetype": "audio/webm",
            "subtype": "slack_audio",
            "name": "audio_message.webm",
        }
        return item | ({"user": user} if user else {})

    own = slack_files({"user": "UOWNER", "files": [clip("UOWNER")]})
    other = slack_files({"user": "UOWNER", "files": [clip("UMALLORY")]})
    unnamed = slack_files({"user": "UOWNER", "files": [clip(None)]})
    assert [r.kind for r in own] == [MediaKind.VOICE]
    assert [r.kind for r in other + unnamed] == [MediaKind.AUDIO, MediaKind.AUDIO]


# -- streamed replies: the reply of a tainted turn is sent whole ----------------------------


def _ask_about_notes_in_a_group(h: Harness, tg: FakeTelegram, notes: str) -> None:
    """`notes` in the workspace's notes.txt, and the owner asking about them in a group, where
    the reply is streamed by editing one message."""
    h.settings.workspace.mkdir(parents=True, exist_ok=True)
    (h.settings.workspace / "notes.txt").write_text(notes)
    tg.push_message(
        "@steward_test_bot what do my notes say?",
        chat_type="supergroup",
        chat_id=-1001234567890,
        user_id=OWNER_TG,
    )


async def test_a_turn_tainted_in_its_last_step_is_not_edited_into_the_preview(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The step limit ends a turn right after a tool read outside content, with no model call
    in between to stop the preview. Its reply (the turn is tainted) must still go out whole as
    a new message, the preview taken down, never edited into the streamed message."""
    fake_model.stream_delay = 0.06
    fake_model.reply_tool_use(
        "read_file", {"path": "notes.txt"}, text="Reading your notes now, one moment please."
    )
    async with (
        FakeTelegram() as tg,
        telegram_steward(tmp_path, fake_model, tg, STEWARD_MAX_STEPS="1") as h,
    ):
        _ask_about_notes_in_a_group(h, tg, "Call Bob at 5.")
        await until(lambda: "I stopped after" in " ".join(tg.sent_texts()), "the step limit")
        await asyncio.sleep(0.3)
        (turn,) = await h.turns()
    assert turn.tainted and turn.status == "step_limit"
    preview = tg.calls_to("sendMessage")[0]  # streamed before the file was read
    assert str(preview.params["text"]).startswith("Reading your notes")
    assert "I stopped after" not in str(preview.params["text"])
    assert [c.params["message_id"] for c in tg.calls_to("deleteMessage")] == [
        str(preview.result["message_id"])
    ]
    edited = [str(c.params.get("text")) for c in tg.calls_to("editMessageText")]
    assert not [t for t in edited if "I stopped after" in t]
    final = [c for c in tg.calls_to("sendMessage") if "I stopped after" in str(c.params["text"])]
    assert len(final) == 1
    assert final[0].params["link_preview_options"] == {"is_disabled": True}


# -- media in: what Pillow is asked to decode, and what a file's name may do ----------------


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, fmt)
    return out.getvalue()


async def test_only_the_image_formats_people_send_are_decoded(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Pillow reads dozens of formats (PCX, SGI, TGA, FLI, ICNS…; EPS through Ghostscript), and
    its rarely used decoders are where its CVEs live. A "photo" is decoded only as JPEG, PNG,
    GIF, WebP, BMP or TIFF, whatever the file calls itself; a PCX sent as image/jpeg is told
    and kept, never decoded. The control, a real JPEG, still reaches the model."""
    fake_model.reply_text("Looked at it.")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        odd = tg.add_file(_image("PCX")) | {"file_name": "pic.jpg", "mime_type": "image/jpeg"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": odd})
        await until(texts_with(tg, "could not open that picture"), "the refusal")
        fine = tg.add_file(_image("JPEG")) | {"file_name": "ok.jpg", "mime_type": "image/jpeg"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": fine})
        await until(texts_with(tg, "Looked at it."), "the reply")
    assert len(fake_model.requests) == 1
    assert len(fake_model.requests[0].images) == 1
    assert {"pic.jpg", "ok.jpg"} <= set(inbox(tmp_path))  # both kept for the owner


async def test_hostile_file_names_stay_inside_the_inbox(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """`../../.env`, a NUL, a 500-character name, and a name whose inbox/ entry a tool made a
    symbolic link to a file outside: each is saved as a new plain file inside inbox/, nothing
    outside it is written or followed."""
    fake_model.reply_text("Got it.")
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "workspace" / "inbox"
    folder.mkdir(parents=True)
    (folder / "notes.txt").symlink_to(outside)
    names = ["../../.env", "a\x00b.txt", "x" * 500 + ".txt", "notes.txt"]
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        for number, name in enumerate(names):
            doc = tg.add_file(f"line {number}\n".encode()) | {
                "file_name": name,
                "mime_type": "text/plain",
            }
            tg.push_message("", user_id=OWNER_TG, extra={"document": doc})
        await until(lambda: len(fake_model.requests) == len(names), "every file read")
    assert outside.read_text() == "precious"
    assert not (tmp_path / ".env").exists() and not (tmp_path / "workspace" / ".env").exists()
    saved = {p.name: p for p in folder.iterdir()}
    plain = {n: p.read_text() for n, p in saved.items() if not p.is_symlink()}
    assert sorted(plain.values()) == [f"line {n}\n" for n in range(len(names))]
    assert all(len(n) <= 100 and "/" not in n and "\x00" not in n for n in plain)
    assert all(p.resolve().parent == folder.resolve() for p in saved.values() if not p.is_symlink())


# -- replies followed: a stranger in a Slack thread is not talking to Steward ---------------


async def test_a_strangers_unaddressed_slack_thread_reply_is_left_alone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Once Steward answered in a public thread, the thread's other messages reach it without a
    mention. A stranger chatting there did not address Steward: no "I only talk to…" reply in
    the thread, no alarm for the owner, no turn."""
    fake_model.reply_text("Today: nothing much.")
    public = "C0PUBLIC"
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        mention = app_mention_event(
            f"<@{slack.bot_user_id}> what's on today?", user=OWNER_SLACK, channel=public
        )
        await post_signed(url, slack.signing_secret, json_body=event_body(mention))
        await until(lambda: slack.posted(public), "the answer in the thread")
        chatter = message_event(
            "did anyone see the game?",
            user="USTRANGER",
            channel=public,
            channel_type="channel",
            thread_ts=mention["ts"],
        )
        await post_signed(url, slack.signing_secret, json_body=event_body(chatter))
        await asyncio.sleep(0.6)
        posted = [p.params for p in slack.posted(public)]
        elsewhere = [p for p in slack.calls_to("chat.postMessage") if p.params["channel"] != public]
        kinds = [e.kind for e in await h.steward.stores.audit.recent(100)]
    assert len(posted) == 1, posted
    assert elsewhere == []
    assert len(fake_model.requests) == 1
    assert "stranger.refused" not in kinds


async def test_an_inbox_that_is_a_symbolic_link_is_not_written_through(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A tool made inbox/ a link to a folder outside the workspace: the file is not written
    there; the sender is told, and the message itself is kept."""
    fake_model.reply_text("ok")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "inbox").symlink_to(elsewhere, target_is_directory=True)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        doc = tg.add_file(b"hello\n") | {"file_name": "a.txt", "mime_type": "text/plain"}
        tg.push_message("read this", user_id=OWNER_TG, extra={"document": doc})
        await until(texts_with(tg, "not a plain folder"), "the problem told")
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
    assert list(elsewhere.iterdir()) == []
    assert any("read this" in t for t in stored)


async def test_a_files_claimed_type_cannot_put_a_link_in_stewards_words(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The MIME type is whatever the sender's client claims. Steward's "I can't read this kind"
    answer (its own, trusted words) must not carry the sender's Markdown: no link appears."""
    claimed = "application/x-y [Approve here](https://evil.example/phish)"
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        doc = tg.add_file(b"\x00\x01binary") | {"file_name": "blob", "mime_type": claimed}
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc})
        told = await until(texts_with(tg, "I can read"), "the answer")
        calls = [c for c in tg.calls_to("sendMessage") if "I can read" in str(c.params)]
    assert "evil.example" not in told[0] and "evil.example" not in str(calls[0].params)
    assert "unknown type" in told[0]


# -- web console: an approver decides single actions, never the owner's policy --------------


async def test_an_approver_cannot_add_a_policy_rule_from_the_console_or_chat(web: Web) -> None:
    """STEWARD_APPROVERS may approve actions; *Always* writes a rule into the owner's policy
    file, so every later call like it runs unasked. Only the owner may do that: an approver's
    Always (a console POST, `/approve <id> always`) changes nothing and is audited; the
    approver is not offered the button."""
    for name in ("one", "two"):
        await web.h.say(
            instruction("send_message", {"channel": "test", "chat": f"bob-{name}", "text": "hi"}),
            sender=APPROVER,
            chat="c2",
        )
    first, second = await web.h.steward.stores.approvals.pending()
    before = web.h.settings.policy_path.read_text() if web.h.settings.policy_path.exists() else ""
    cookie = await web.login(APPROVER, chat="c2")
    token = await web.csrf(cookie)
    _, listed = await web.request("GET", "/approvals/list", cookie=cookie)
    assert first.id in listed and 'value="always"' not in listed
    pressed, _ = await web.request(
        "POST",
        f"/approvals/{first.id}",
        cookie=cookie,
        headers=web.origin(),
        data={"csrf": token, "choice": "always"},
    )
    assert pressed.status == 303
    said = await web.h.say(f"/approve {second.id} always", sender=APPROVER, chat="c2")
    assert "only the owner" in said.lower()
    after = web.h.settings.policy_path.read_text() if web.h.settings.policy_path.exists() else ""
    assert after == before
    assert await web.h.steward.stores.audit.recent(5, kind="policy.changed") == []
    for request in (first, second):
        still = await web.h.steward.stores.approvals.get(request.id)
        assert still is not None and still.status.value == "pending"
    # a plain approve by the approver still works
    said = await web.h.say(f"/approve {second.id}", sender=APPROVER, chat="c2")
    assert f"Approved {second.id}: send_message " in said, said  # ran (and failed: no chat)


# -- media in: what an inline bot made is not the owner's own words -------------------------


async def test_a_voice_note_sent_through_an_inline_bot_is_outside_content(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """`@somebot …` in the message field sends what that third-party bot chose (a sound, a
    clip, an article) under the owner's name, marked `via_bot`. It is that bot's content, like
    a forward: fenced, tainting, never echoed as "I heard"."""
    audio = b"OggS inline bot sound"
    fake_model.on_request(obedient_model)
    async with FakeSTT() as stt:
        stt.say(audio, instruction("write_file", {"path": "inline.txt", "content": "x"}))
        async with (
            FakeTelegram() as tg,
            telegram_steward(tmp_path, fake_model, tg, STEWARD_STT_URL=stt.base_url) as h,
        ):
            voice = tg.add_file(audio) | {"duration": 2}
            bot = {"id": 555, "is_bot": True, "first_name": "Sounds", "username": "soundsbot"}
            tg.push_message("", user_id=OWNER_TG, extra={"voice": voice, "via_bot": bot})
            async with asyncio.timeout(10):
                while not (done := [t for t in await h.turns() if t.status != "running"]):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    assert not (tmp_path / "workspace" / "inline.txt").exists()
    assert done[0].tainted
    assert not [t for t in tg.sent_texts() if "I heard" in t]


async def test_markup_in_arguments_memories_and_audit_details_is_shown_as_text(web: Web) -> None:
    """What a page writes into a tool call's arguments, a memory or an audit detail is shown,
    escaped, on every console page: no tag of it reaches the DOM."""
    payload = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    command = "echo '\"><img src=x onerror=alert(1)><script>alert(2)'"  # no "/": a path
    await web.h.say(instruction("shell", {"command": command}))
    await web.h.say(f"/remember my note {payload}")
    await web.h.steward.stores.audit.record("test.detail", actor="x", subject=payload, why=payload)
    assert len(await web.h.steward.stores.approvals.pending()) == 1
    cookie = await web.login()
    for path in ("/", "/approvals", "/approvals/list", "/activity", "/memory", "/activity/turn/1"):
        response, html = await web.request("GET", path, cookie=cookie)
        assert response.status == 200, path
        assert "<img src=x" not in html and "<script>alert" not in html, path
        if path in ("/approvals", "/activity", "/memory"):
            assert "&lt;img src=x onerror=alert(1)&gt;" in html, path


async def test_a_link_opened_many_times_at_once_signs_in_exactly_once(web: Web) -> None:
    """The sign-in button pressed many times at once (two tabs, a double tap, a replayed
    POST): one of the concurrent presses gets a session, every other one is refused."""
    link = await web.link()
    token = link.split("token=", 1)[1]
    answers = await asyncio.gather(
        *(
            web.request("POST", "/login", headers=web.origin(), data={"token": token})
            for _ in range(8)
        )
    )
    statuses = sorted(response.status for response, _ in answers)
    assert statuses == [303] + [403] * 7
    assert len(await web.h.steward.stores.audit.recent(50, kind="web.login")) == 1


async def test_near_miss_host_names_are_refused(web: Web) -> None:
    """Rebinding names that only look like Steward's: a trailing dot, another port, a
    loopback name as a subdomain, an IPv4 spelled in decimal."""
    cookie = await web.login()
    port = web.base.rsplit(":", 1)[1]
    for host in (
        f"localhost.:{port}",
        f"127.0.0.1.:{port}",
        f"127.0.0.1:{int(port) + 1}",
        f"localhost.evil.example:{port}",
        f"2130706433:{port}",
        "",
    ):
        response, _ = await web.request("GET", "/approvals", cookie=cookie, headers={"Host": host})
        assert response.status == 421, host


# -- media in: a PDF that is cheap to send and ruinous to read ------------------------------


def _heavy_pdf(pages: int, operator_bytes: int) -> bytes:
    """`pages` pages, each a FlateDecode content stream of `operator_bytes` of text-showing
    operators: kilobytes on the wire, minutes of pypdf's time per page."""
    ops = b"BT /F1 12 Tf 72 720 Td " + b"(a) Tj " * (operator_bytes // 7) + b"ET"
    packed = zlib.compress(ops, 9)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
    ]
    font = 3 + 2 * pages
    for i in range(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R"
            f" /Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(
            f"<< /Length {len(packed)} /Filter /FlateDecode >>\nstream\n".encode()
            + packed
            + b"\nendstream"
        )
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return pdf_file(objects)


async def test_a_pdf_whose_pages_take_minutes_to_read_is_cut_short(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Four pages of 5 MB of drawing instructions (16 KB sent) would hold a CPU core for a
    minute and a half, the chat waiting behind it. Pages with more instructions than any page
    of text has are skipped with a note, and the answer comes within seconds."""
    raw = _heavy_pdf(4, 5_000_000)
    assert len(raw) < 40_000
    fake_model.reply_text("Read what I could.")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        doc = tg.add_file(raw) | {"file_name": "heavy.pdf", "mime_type": "application/pdf"}
        tg.push_message("what is this?", user_id=OWNER_TG, extra={"document": doc})
        await until(
            lambda: fake_model.requests or texts_with(tg, "could not read")(), "an answer", 15
        )
    said = "\n".join(r.last_user_text for r in fake_model.requests) + " ".join(tg.sent_texts())
    assert "too much" in said


def _form_bomb_pdf(draws: int = 100, fan: int = 50, ops: int = 150) -> bytes:
    """One page whose own content is ~1 KB: it draws form F0 `draws` times, F0 draws F1 `fan`
    times, F1 is `ops` cheap operators. pypdf caps form calls at 5,000 a page but replays F1's
    operators on each: a page of a 1 KB file costs 5,000 x `ops` steps."""
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"

    def stream(head: bytes, data: bytes) -> bytes:
        packed = zlib.compress(data, 9)
        return (
            (b"<< " + head + b" /Filter /FlateDecode /Length %d >>\nstream\n" % len(packed))
            + packed
            + b"\nendstream"
        )

    form = b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources "
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /XObject << /F0 5 0 R >> /Font << /H 7 0 R >> >> >>",
        4: stream(b"", b"BT /H 12 Tf 10 10 Td (hello) Tj ET\n" + b"q /F0 Do Q\n" * draws),
        5: stream(form + b"<< /XObject << /F1 6 0 R >> >>", b"q /F1 Do Q\n" * fan),
        6: stream(form + b"<< /Font << /H 7 0 R >> >>", b"1 0 0 1 0 0 cm\n" * ops),
        7: font,
    }
    return pdf_file(list(objects.values()))


async def test_a_tiny_pdf_that_draws_one_form_thousands_of_times_is_cut_short() -> None:
    """The deadline was checked between pages only, and the page-size cap sees a page's own
    content, not the forms it draws: 1 KB held a core for minutes (hours with more operators).
    The deadline is now checked before every drawing operation, forms' included."""
    from agent.media.documents import DocumentError, extract_text

    raw = _form_bomb_pdf()
    assert len(raw) < 2_000
    started = time.monotonic()
    with pytest.raises(DocumentError, match="too much to read"):
        await extract_text(raw, "pdf", seconds=1.0)
    assert time.monotonic() - started < 5


_PALETTE_BOMB = """
import io, resource, sys
from PIL import Image
image = Image.new("P", (7745, 7745), 0)  # 60 M pixels, under the cap; a 7 KB file
image.info["transparency"] = 0
buffer = io.BytesIO()
image.save(buffer, "PNG", optimize=True, transparency=0)
raw = buffer.getvalue()
del image
from agent.media.images import _prepare
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
prepared = _prepare(raw)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(len(raw), prepared.media_type, prepared.width, prepared.height, grew // 1024)
"""


def test_a_small_palette_png_is_shrunk_before_it_takes_four_bytes_a_pixel() -> None:
    """Converted to RGBA before it was shrunk, a 7 KB palette PNG of 7,745 x 7,745 took 470 MB
    (several chats at once, each on its own thread): on a small server, the process's end."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", _PALETTE_BOMB], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    size, media_type, width, height, grew_mib = run.stdout.split()
    assert int(size) < 10_000 and media_type == "image/png"  # transparency kept
    assert (int(width), int(height)) == (1568, 1568)
    assert int(grew_mib) < 250, f"decoding it took {grew_mib} MiB more"


def _font_map_pdf(fonts: int, entries: int = 20_000, first: bytes = b"") -> bytes:
    """One page naming `fonts` fonts that share one ToUnicode map of `entries` lines (after
    `first`, e.g. a malformed entry pypdf skips)."""
    lines = b"".join(b"<%04X> <%04X>\n" % (i % 65536, i % 65536) for i in range(entries))
    cmap = zlib.compress(
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        b"1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        + b"%d beginbfchar\n" % entries
        + lines
        + b"endbfchar\nendcmap end end\n",
        9,
    )
    text = b"BT /F0 12 Tf 10 10 Td (hi) Tj ET"
    names = first + b" ".join(b"/F%d %d 0 R" % (i, 6 + i) for i in range(fonts))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << "
        + names
        + b" >> >> /Contents 5 0 R >>",
        b"<< /Filter /FlateDecode /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
    ]
    objects += [
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 4 0 R /N %d >>" % i
        for i in range(fonts)
    ]
    return pdf_file(objects)


def _type1_font_pdf(fonts: int, codes: int = 200_000) -> bytes:
    """`fonts` Type 1 fonts without a ToUnicode map, sharing one embedded font program whose
    encoding has `codes` entries (pypdf parses it into every font)."""
    program = zlib.compress(
        b"%!PS-AdobeFont-1.0: Foo\n/Encoding 256 array\n"
        + b"".join(b"dup %d /A put\n" % i for i in range(codes))
        + b"readonly def\neexec\n",
        9,
    )
    text = b"BT /F0 12 Tf 10 10 Td (hi) Tj ET"
    names = b" ".join(b"/F%d %d 0 R" % (i, 7 + i) for i in range(fonts))
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << "
            + names
            + b" >> >> /Contents 5 0 R >>",
            b"<< /Filter /FlateDecode /Length %d >>\nstream\n" % len(program)
            + program
            + b"\nendstream",
            b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
            b"<< /Type /FontDescriptor /FontName /Foo /Flags 32 /FontFile 4 0 R >>",
            *(
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Foo /FontDescriptor 6 0 R /N %d >>" % i
                for i in range(fonts)
            ),
        ]
    )


@pytest.mark.parametrize(
    "bomb",
    ["shared map", "a malformed entry first", "type 1 programs"],
)
async def test_a_page_whose_fonts_take_minutes_to_parse_is_not_read(bomb: str) -> None:
    """pypdf parses every font's ToUnicode map, and a Type 1 program's encoding into each font,
    before a page's first drawing operation, so no deadline check runs meanwhile: 100 fonts
    sharing one 0.5 MB map took ten seconds against a 0.2 s deadline (tens of minutes for a
    few MB; a Type 1 program, gigabytes of memory). A malformed entry first, which pypdf
    skips, stopped the count. Such a page is not read; a page of a few fonts is."""
    from agent.media.documents import DocumentError, extract_text

    raw = {
        "shared map": lambda: _font_map_pdf(100),
        "a malformed entry first": lambda: _font_map_pdf(100, first=b"/Z 0 "),
        "type 1 programs": lambda: _type1_font_pdf(40),
    }[bomb]()
    started = time.monotonic()
    with pytest.raises(DocumentError, match="too much to read"):
        await extract_text(raw, "pdf", seconds=1.0)
    assert time.monotonic() - started < 3
    assert "hi" in (await extract_text(_font_map_pdf(2), "pdf", seconds=5.0)).text


async def test_a_form_the_page_never_draws_with_an_unreadable_map_still_reads() -> None:
    """Counting the fonts met a ToUnicode map with a filter pypdf cannot decode, in a form the
    page lists but never draws: NotImplementedError failed the whole message."""
    from agent.media.documents import extract_text

    text = b"BT /F0 12 Tf 10 10 Td (hello) Tj ET"
    raw = pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F0 "
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> /XObject << /Unused "
            b"4 0 R >> >> /Contents 5 0 R >>",
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << /Font << /G 6 0 R"
            b" >> >> /Length 0 >>\nstream\n\nendstream",
            b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 7 0 R >>",
            b"<< /Filter /Foo /Length 2 >>\nstream\nxx\nendstream",
        ]
    )
    assert "hello" in (await extract_text(raw, "pdf", seconds=5.0)).text


@pytest.mark.parametrize("mode", ["I;16", "1", "LA"])
def test_a_wide_image_in_any_mode_is_shrunk_or_refused_in_words(mode: str) -> None:
    """Shrinking in the file's own mode met modes `reduce` refuses (a 16-bit grey scan):
    the message failed with "something went wrong"."""
    from agent.media.images import _prepare

    buffer = io.BytesIO()
    Image.new(mode, (6400, 100)).save(buffer, "PNG")
    prepared = _prepare(buffer.getvalue())
    assert (prepared.width, prepared.height) == (1568, 25)


async def test_after_a_broken_stream_a_tainted_answer_is_not_edited_into_the_preview(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The stream breaks off; the step is asked again unstreamed and reads a file, and the next
    step writes the answer from it. No preview is stopped along the way (none is streaming any
    more), so the answer written after outside content must not be edited into the message
    that showed the broken stream: it comes whole, the preview taken down."""
    fake_model.stream_delay = 0.12
    fake_model.reply(
        replace(Reply.text("Let me look that up for you, one moment"), cut_after_events=6)
    )
    fake_model.reply_tool_use("read_file", {"path": "notes.txt"})
    fake_model.reply_text("Your notes say: call Bob at five, https://evil.example/x")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        _ask_about_notes_in_a_group(h, tg, "Call Bob at 5. https://evil.example/x")
        await until(lambda: "call Bob" in " ".join(tg.sent_texts()), "the answer")
        await asyncio.sleep(0.3)
        (turn,) = await h.turns()
    assert turn.tainted and [r.stream for r in fake_model.requests] == [True, False, False]
    preview = tg.calls_to("sendMessage")[0]
    assert str(preview.params["text"]).startswith("Let me")
    edited = [str(c.params.get("text")) for c in tg.calls_to("editMessageText")]
    assert not [t for t in edited if "Bob" in t]
    (final,) = [c for c in tg.calls_to("sendMessage") if "call Bob" in str(c.params["text"])]
    assert final.params["link_preview_options"] == {"is_disabled": True}


# -- media in: the Slack bot token goes to Slack's file host and nowhere else ---------------


async def test_the_slack_token_is_not_sent_to_another_port_of_the_api_host() -> None:
    """With SLACK_API_URL on 127.0.0.1 (a test server, a gateway), a file link to *another*
    port there (any local service) must not receive `Authorization: Bearer <bot token>`."""
    from aiohttp import web as aioweb

    from agent.attachments import FileUnavailable, MediaRef

    seen: list[str] = []

    async def grab(request: aioweb.Request) -> aioweb.Response:
        seen.append(request.headers.get("Authorization", ""))
        return aioweb.Response(body=b"x", content_type="image/jpeg")

    app = aioweb.Application()
    app.router.add_get("/{tail:.*}", grab)
    runner = aioweb.AppRunner(app)
    await runner.setup()
    site = aioweb.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        ref = MediaRef(
            "slack", MediaKind.PHOTO, f"http://127.0.0.1:{port}/f.jpg", "f.jpg", "image/jpeg", 1
        )
        with pytest.raises(FileUnavailable):
            await slack_fetch("xoxb-secret", ref, 1000, api_url=f"http://127.0.0.1:{port + 1}/api/")
    finally:
        await runner.cleanup()
    assert seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:2/files-pri/T1-F1/x.jpg",  # the API host's name, another port
        "https://127.0.0.1:1/files-pri/T1-F1/x.jpg",  # another scheme
        "https://files.slack.com.evil.example/x.jpg",
        "https://evil.example/x.jpg#.files.slack.com",
        "https://files.slack.com:8443/x.jpg",
        "https://evil.example%2F.files.slack.com/x.jpg",
    ],
)
def test_a_look_alike_of_slacks_file_host_is_not_trusted_with_the_token(url: str) -> None:
    assert not slack_host_allowed(url, "http://127.0.0.1:1/api/")


def test_slacks_real_file_hosts_are_still_allowed() -> None:
    for url in (
        "https://files.slack.com/files-pri/T1-F1/x.jpg",
        "https://files-edu.slack-files.com/x",
        "http://127.0.0.1:1/files-pri/T1-F1/x.jpg",
    ):
        assert slack_host_allowed(url, "http://127.0.0.1:1/api/"), url


# -- web console: a copy of the database lets nobody in -------------------------------------


async def test_the_login_link_is_delivered_but_never_written_to_the_database(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Only hashes of link tokens are stored, so a backup or a copied steward.db signs nobody
    in; the chat's message log (which keeps every reply Steward sends) must not hold the live
    link either: the owner gets it, the log a placeholder."""
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        tg.push_message("/web", user_id=OWNER_TG)
        sent = await until(
            lambda: [c for c in tg.calls_to("sendMessage") if "token=" in str(c.params)],
            "the login link",
        )
        (token,) = TOKEN.findall(str(sent[0].params["text"]))
        logged = [m.text for m in await h.steward.stores.messages.all(direction="out")]
        files = [p for p in h.settings.data_dir.rglob("*") if p.is_file()]
        on_disk = b"".join(p.read_bytes() for p in files)
    assert logged and not [t for t in logged if token in t]
    assert any("/web" in t for t in logged)  # the placeholder says how to get a new one
    assert token.encode() not in on_disk


_UNPACKING_BOMB = """
import asyncio, io, resource, sys, time, zlib
sys.path.insert(0, "tests")
from media_bombs import pdf_file
from agent.media.documents import DocumentError, extract_text

packed = zlib.compress(zlib.compress(b" " * 70_000_000, 9), 9)  # 70 MB in a few hundred bytes
def stream(data):
    head = b"<< /Filter [/FlateDecode /FlateDecode] /Length %d >>\\nstream\\n" % len(data)
    return head + data + b"\\nendstream"
if sys.argv[1] == "fonts":  # one page naming 40 fonts, each with its own 70 MB map
    text = b"BT /F0 12 Tf 10 10 Td (hi) Tj ET"
    names = b" ".join(b"/F%d %d 0 R" % (i, 5 + 2 * i) for i in range(40))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << "
        + names + b" >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\\nstream\\n" % len(text) + text + b"\\nendstream",
    ]
    for i in range(40):
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode %d 0 R >>"
                       % (len(objects) + 2))
        objects.append(stream(packed))
elif sys.argv[1] == "forms":  # one page drawing 400 forms of 7.9 MB each (under 8 MB)
    inline = b"BI /W 7900000 /H 1 /BPC 8 /CS /G ID " + b"\\0" * 7_900_000 + b" EI\\n"
    form = zlib.compress(zlib.compress(inline, 9), 9)
    content = b"BT /F1 12 Tf 72 720 Td (hello) Tj ET\\n" + b"".join(
        b"/X%d Do\\n" % i for i in range(400)
    )
    names = b" ".join(b"/X%d %d 0 R" % (i, 6 + i) for i in range(400))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources"
        b" << /Font << /F1 5 0 R >> /XObject << " + names + b" >> >> >>",
        b"<< /Length %d >>\\nstream\\n" % len(content) + content + b"\\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    head = (b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << /Font"
            b" << /F1 5 0 R >> >> /Filter [/FlateDecode")
    for i in range(400):
        objects.append(head + b" /FlateDecode] /Length %d >>\\nstream\\n" % len(form) + form
                       + b"\\nendstream")
else:  # 40 pages, each a 70 MB content stream
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for i in range(40):
        kids.append(b"%d 0 R" % (len(objects) + 1))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R >>"
                       % (len(objects) + 2))
        objects.append(stream(packed))
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count 40 >>"
raw = pdf_file(objects)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
try:
    asyncio.run(extract_text(raw, "pdf", seconds=30.0))
    said = "read"
except DocumentError as exc:
    said = "too much" if "too much to read" in str(exc) else str(exc)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(len(raw), said.replace(" ", "_"), grew // 1024, round(time.monotonic() - started, 1))
"""


@pytest.mark.parametrize("bomb", ["fonts", "pages", "forms"])
def test_a_small_pdf_never_unpacks_to_gigabytes(bomb: str) -> None:
    """Streams were unpacked whole to measure them (pypdf allows 75 MB each): a 20 KB PDF of
    forty fonts, each a 70 MB map deflated twice, took 2.7 GB and 14 s; forty such pages the
    same. No stream is unpacked past 8 MB, and counting stops once a page is over. And pypdf
    keeps what it unpacked: a page drawing 700 forms of 7.9 MB took 5 GB, so a PDF is read in
    a process of its own with a memory limit; Steward's own grows by little."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", _UNPACKING_BOMB, bomb],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    assert run.returncode == 0, run.stderr
    size, said, grew_mib, seconds = run.stdout.split()
    assert int(size) < 400_000 and said == "too_much", run.stdout
    assert int(grew_mib) < 300, f"reading it took {grew_mib} MiB more"
    assert float(seconds) < 40, f"reading it took {seconds} s"
