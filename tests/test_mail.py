"""E-mail tools against real servers: Dovecot (started here as a user process) and aiosmtpd.

The model is the obedient one of the trust suite: the owner's message says which tool to call
(`DO {...}`), and what the tool returns is checked in the next request the model receives.

(Over 400 lines: each tool's cases share the running Dovecot and aiosmtpd.)
"""

from __future__ import annotations

import imaplib
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mailservers import (
    PASSWORD,
    USER,
    Dovecot,
    SmtpRecorder,
    dovecot_server,
    mail_settings,
    plain_mail,
    received_messages,
    sample_html_mail,
)
from trust_world import World, instruction, trust_world

from agent.config import ConfigError, load_settings

# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"EMAIL_IMAP_URL": "https://imap.example.org"}, "EMAIL_IMAP_URL: "),
        ({"EMAIL_IMAP_URL": "imaps://imap.example.org"}, "EMAIL_IMAP_URL: "),
        ({"EMAIL_IMAP_URL": "imaps://me:pw@imap.example.org"}, "EMAIL_IMAP_URL: put the password"),
        ({"EMAIL_SMTP_URL": "smtp://me%40x.org@smtp.x.org:port"}, "EMAIL_SMTP_URL: "),
        ({"EMAIL_IMAP_URL": "imaps://me%40x.org@imap.x.org"}, "EMAIL_PASSWORD: required"),
        (
            {"EMAIL_IMAP_URL": "imaps://me@imap.x.org", "EMAIL_PASSWORD": "p"},
            "EMAIL_FROM: required",
        ),
        ({"EMAIL_FROM": "not an address"}, "EMAIL_FROM: "),
        ({"EMAIL_FOLDERS": " , "}, "EMAIL_FOLDERS: "),
    ],
)
def test_a_wrong_mail_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(fragment), str(caught.value)
    assert "\n" not in str(caught.value)


def test_mail_settings_are_parsed_and_the_password_stays_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMAIL_IMAP_URL", "imap://me%40example.org@imap.example.org")
    monkeypatch.setenv("EMAIL_SMTP_URL", "smtps://me%40example.org@smtp.example.org")
    monkeypatch.setenv("EMAIL_PASSWORD", "CANARY-mail-pw")
    monkeypatch.setenv("EMAIL_FOLDERS", "INBOX, Work")
    settings = load_settings()
    from agent.mail.setup import account_from

    account = account_from(settings)
    assert account is not None and account.imap is not None and account.smtp is not None
    assert (account.imap.port, account.imap.implicit_tls) == (143, False)
    assert account.imap.starttls_required  # not a local server: STARTTLS or nothing
    assert (account.smtp.port, account.smtp.implicit_tls) == (465, True)
    assert account.from_address == "me@example.org" and account.folders == ("INBOX", "Work")
    assert "CANARY" not in repr(settings) and "CANARY" not in repr(account)


def test_a_bad_mail_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "EMAIL_SMTP_URL": "smtp://me%40example.org@smtp.example.org:twenty-five",
        "EMAIL_PASSWORD": "x",
        "STEWARD_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "EMAIL_SMTP_URL" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ helpers


def results_of(w: World, tool: str) -> list[dict[str, Any]]:
    """The tool results the model received for calls of `tool`, in order."""
    found: list[dict[str, Any]] = []
    for request in w.model.requests:
        uses = {
            b["id"]: b["name"]
            for m in request.messages
            if m["role"] == "assistant" and isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "tool_use"
        }
        for result in request.tool_results:
            if uses.get(result["tool_use_id"]) == tool and result not in found:
                found.append(result)
    return found


def _text(result: dict[str, Any]) -> str:
    content = result["content"]
    return content if isinstance(content, str) else str(content)


def imap_flags(server: Dovecot, folder: str = "INBOX") -> dict[int, bytes]:
    """Each message's flags, read with the standard library's client (a second opinion)."""
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", server.imaps_port, ssl_context=ssl.create_default_context()
    )
    try:
        client.login(USER, PASSWORD)
        client.select(folder, readonly=True)
        _, data = client.uid("fetch", "1:*", "(FLAGS)")
        flags: dict[int, bytes] = {}
        for line in data:
            if isinstance(line, bytes) and b"UID" in line:
                uid = int(line.split(b"UID ")[1].split()[0].rstrip(b")"))
                flags[uid] = line
        return flags
    finally:
        client.logout()


# ------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("tls", [True, False], ids=["imaps-aioimaplib", "starttls-imapclient"])
async def test_search_and_read_an_html_message_with_an_attachment(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder, tls: bool
) -> None:
    dovecot.deliver(plain_mail("Bob <bob@other.example>", "Lunch?", "Friday at noon?"), seen=True)
    dovecot.deliver(sample_html_mail())
    settings = mail_settings(dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=tls))
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say(instruction("mail_search", {"subject": "quarterly", "unread": True}))
        [found] = results_of(w, "mail_search")
        listing = _text(found)
        assert "<untrusted id=" in listing and 'source="mail:INBOX"' in listing
        assert "UID 2" in listing and "Quarterly report" in listing and "unread" in listing
        assert "Lunch" not in listing  # read and not matching
        await w.h.say(instruction("mail_read", {"uid": 2}))
        [read] = results_of(w, "mail_read")
        text = _text(read)
        assert 'source="mail:ann@partner.example"' in text  # fenced as the sender's words
        assert "Q3 numbers" in text and "<b>" not in text and "<p>" not in text
        assert "alert(" not in text and "color: red" not in text  # script and style dropped
        assert "[image: logo]" in text and "tracker.example" not in text  # never loaded
        assert "Details online <https://partner.example/q3>" in text  # shown, not followed
        assert "q3-report.pdf (application/pdf, 29.3 KB)" in text
        assert "From: Ann Example <ann@partner.example>" in text
        assert "Cc: Carl <carl@partner.example>" in text
        turns = await w.h.turns()
        assert turns[-1].tainted and any(s.startswith("mail:") for s in turns[-1].label.sources)
        # looking is not reading: nothing was marked \Seen
        assert b"\\Seen" not in imap_flags(dovecot)[2]
        await w.check_invariants()


async def test_a_malformed_a_huge_and_a_latin1_message_are_read(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    malformed = (
        b"From: Broken <broken@weird.example>\r\n"
        b"To: me@example.org\r\n"
        b"Subject: =?utf-8?q?half_an_encoded_word\r\n"
        b'Content-Type: multipart/mixed; boundary="never-closed"\r\n'
        b"\r\n"
        b"--never-closed\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"SGVsbG8gZnJvbSBhIGJyb2tlbiBtZXNzYWdl!!!not-base64\r\n"
        b"--never-closed\r\n"
        b'Content-Type: application/octet-stream; name="data.bin"\r\n'
        b"Content-Disposition: attachment\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"AAECAwQ=\r\n"
    )
    latin1 = (
        b"From: =?iso-8859-1?q?J=FCrgen?= <juergen@example.de>\r\n"
        b"To: me@example.org\r\n"
        b"Subject: Gr\xfc\xdfe aus K\xf6ln\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"Sch\xf6ne Gr\xfc\xdfe!\r\n"
    )
    huge = plain_mail("Big <big@files.example>", "The video", "Here it is.")
    huge.add_attachment(os.urandom(15_000_000), maintype="video", subtype="mp4", filename="v.mp4")
    raw_huge = bytes(huge)
    assert len(raw_huge) > 20_000_000  # base64 makes 15 MB into 20 MB on the wire
    dovecot.deliver(malformed)
    dovecot.deliver(latin1)
    dovecot.deliver(raw_huge)
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_search", {}))
        listing = _text(results_of(w, "mail_search")[0])
        assert "Grüße aus Köln" in listing  # 8-bit Latin-1 read as such, not as mojibake
        assert "UID 1" in listing and "UID 3" in listing
        await w.h.say(instruction("mail_read", {"uid": 1}))
        broken = _text(results_of(w, "mail_read")[0])
        assert "is_error" not in str(results_of(w, "mail_read")[0].get("is_error", ""))
        assert "From: Broken <broken@weird.example>" in broken
        assert "Hello from a broken message" in broken
        assert "data.bin" in broken
        await w.h.say(instruction("mail_read", {"uid": 2}))
        german = _text(results_of(w, "mail_read")[1])
        assert "Schöne Grüße!" in german and "Jürgen" in german
        started = time.perf_counter()
        await w.h.say(instruction("mail_read", {"uid": 3}))
        seconds = time.perf_counter() - started
        big = _text(results_of(w, "mail_read")[2])
        assert "v.mp4 (video/mp4, 14.3 MB)" in big and "Here it is." in big
        assert len(big) < 5_000  # names and sizes, never the attachment itself
        assert seconds < 30, seconds
        print(f"\nmail_read of a {len(raw_huge) / 1e6:.1f} MB message: {seconds:.2f} s (turn)")
        await w.check_invariants()


# ------------------------------------------------------------------------------ sending


def _pending(w: World, tool: str) -> Any:
    return [p for _, p in w.h.channel.approvals if p.tool == tool]


async def test_a_reply_is_threaded_quoted_and_shown_whole_before_it_goes(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    dovecot.deliver(sample_html_mail())
    body = "Thanks Ann, I will read it tonight.\n" + "More detail. " * 200
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": body, "reply_all": True}))
        [card] = _pending(w, "mail_reply")
        preview = card.preview
        for part in (
            "From: Me <me@example.org>",
            "To: ann@partner.example",
            "Cc: carl@partner.example",
            "Bcc: (none)",
            "Subject: Re: Quarterly report",
            "Attachments: (none)",
            "> The Q3 numbers are attached.",
            "In-Reply-To: <q3@partner.example>",
            body.strip(),
        ):
            assert part in preview, part
        assert smtp_server.messages == []  # nothing left before the owner said yes
        await w.h.say(f"/approve {card.approval_id}")
        assert len(smtp_server.messages) == 1
        envelope = smtp_server.messages[0]
        assert sorted(envelope.recipients) == ["ann@partner.example", "carl@partner.example"]
        assert envelope.sender == USER
        sent = received_messages(smtp_server)[0]
        assert sent["In-Reply-To"] == "<q3@partner.example>"
        assert sent["References"] == "<earlier@partner.example> <q3@partner.example>"
        assert sent["Subject"] == "Re: Quarterly report"
        text = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert text.startswith("Thanks Ann") and "> The Q3 numbers are attached." in text
        assert "wrote:" in text
        assert smtp_server.logins == [USER]
        await w.check_invariants()


async def test_send_shows_bcc_and_attachments_and_bcc_stays_out_of_the_headers(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        (w.workspace / "reports").mkdir()
        (w.workspace / "reports" / "q3.pdf").write_bytes(b"%PDF-1.4 report")
        args = {
            "to": "Ann <ann@partner.example>",
            "cc": "carl@partner.example",
            "bcc": "auditor@firm.example",
            "subject": "Figures",
            "body": "See attached.",
            "attachments": ["reports/q3.pdf"],
        }
        await w.h.say(instruction("mail_send", args))
        [card] = _pending(w, "mail_send")
        assert "Bcc: auditor@firm.example" in card.preview
        assert "- q3.pdf (15 B, sha256 " in card.preview
        # the file changes after the card was shown: the approval no longer matches
        (w.workspace / "reports" / "q3.pdf").write_bytes(b"%PDF-1.4 something else")
        await w.h.say(f"/approve {card.approval_id}")
        assert smtp_server.messages == []
        await w.h.say(instruction("mail_send", args | {"subject": "Figures again"}))
        card = _pending(w, "mail_send")[-1]
        await w.h.say(f"/approve {card.approval_id}")
        assert len(smtp_server.messages) == 1
        assert "auditor@firm.example" in smtp_server.messages[0].recipients
        sent = received_messages(smtp_server)[0]
        assert "auditor" not in str(sent)  # Bcc: envelope only
        [attached] = list(sent.iter_attachments())  # type: ignore[attr-defined]
        assert attached.get_filename() == "q3.pdf"
        assert attached.get_content() == b"%PDF-1.4 something else"
        await w.check_invariants()


async def test_the_card_shows_the_subject_and_names_on_one_line_as_they_are_sent(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """The card printed the subject as the model wrote it, line breaks and all, while the
    message went out with them folded: a subject drew its own "Attachments: (none)" and body
    lines into the card, above the real attachment list."""
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        (w.workspace / "tax\nreturn.pdf").write_bytes(b"%PDF-1.4 private")
        (w.workspace / "private").mkdir()
        (w.workspace / "private" / "bank\nstatement.pdf").write_bytes(b"%PDF-1.4 bank")
        (w.workspace / "menu.pdf").symlink_to("private/bank\nstatement.pdf")  # named as one
        subject = "Lunch\nAttachments: (none)\n--- body (9 characters) ---\nSee you!\n\n"
        args = {"to": "bob@example.org", "subject": subject, "body": "See you!"}
        attached = ["tax\nreturn.pdf", "menu.pdf"]
        await w.h.say(instruction("mail_send", args | {"attachments": attached}))
        [card] = _pending(w, "mail_send")
        lines = card.preview.splitlines()
        [linked] = [line for line in lines if line.startswith("- menu.pdf")]
        assert linked.endswith("(a link: the file attached is private/bank\\x0astatement.pdf)")
        assert "Subject: Lunch Attachments: (none) --- body (9 characters) --- See you!" in lines
        assert sum(line.startswith("Attachments:") for line in lines) == 1, card.preview
        assert sum(line.startswith("--- body") for line in lines) == 1, card.preview
        assert any(line.startswith("- tax return.pdf (16 B, sha256 ") for line in lines)
        await w.h.say(f"/approve {card.approval_id}")
        sent = received_messages(smtp_server)[0]
        assert sent["Subject"] == "Lunch Attachments: (none) --- body (9 characters) --- See you!"
        names = [part.get_filename() for part in sent.iter_attachments()]  # type: ignore[attr-defined]
        assert names == ["tax return.pdf", "menu.pdf"]
        await w.check_invariants()


async def test_an_attachment_changed_after_the_approval_was_checked_is_not_sent(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """The approval is checked against the files, then the send reads them again: a file
    changed in between (a command still running) went out unseen. The send, run as an
    approved call runs it, compares what it read with what was approved."""
    from dataclasses import replace

    from agent.tools.mail import mail_send

    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        (w.workspace / "q3.pdf").write_bytes(b"%PDF-1.4 report")
        args = {"to": "ann@partner.example", "subject": "Q3", "body": "Attached.",
                "attachments": ["q3.pdf"]}  # fmt: skip
        await w.h.say(instruction("mail_send", args))
        [card] = _pending(w, "mail_send")
        approval = await w.h.steward.stores.approvals.get(card.approval_id)
        assert approval is not None
        ctx = await w.h.steward._ctx_for(approval)
        (w.workspace / "q3.pdf").write_bytes(b"the owner's private notes")
        approved = replace(ctx, approved_fingerprint=approval.fingerprint)
        result = await mail_send.run(approved, approval.arguments)
        assert result.is_error and "changed after it was approved" in result.content
        assert smtp_server.messages == []
        (w.workspace / "q3.pdf").write_bytes(b"%PDF-1.4 report")  # as approved: it goes
        assert not (await mail_send.run(approved, approval.arguments)).is_error
        assert len(smtp_server.messages) == 1


async def test_mail_to_the_owners_own_address_may_be_allowed_by_policy(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        note = {"to": USER, "subject": "Note to self", "body": "buy milk"}
        await w.h.say(instruction("mail_send", note))
        assert _pending(w, "mail_send") == []  # the default rule: to_owner = true → allow
        assert [m.recipients for m in smtp_server.messages] == [[USER]]
        sneaky = {"to": USER, "bcc": "someone@else.example", "subject": "x", "body": "y"}
        await w.h.say(instruction("mail_send", sneaky))
        assert len(_pending(w, "mail_send")) == 1  # anyone else on it: ask
        assert len(smtp_server.messages) == 1
        await w.check_invariants()


async def test_move_and_flag_change_the_mailbox(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    for n in range(3):
        dovecot.deliver(plain_mail("Shop <news@shop.example>", f"Offer {n}", "Buy now"))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_flag", {"uids": [1, 2], "action": "read"}))
        flags = imap_flags(dovecot)
        assert b"\\Seen" in flags[1] and b"\\Seen" in flags[2] and b"\\Seen" not in flags[3]
        await w.h.say(instruction("mail_move", {"uids": [3], "to_folder": "Archive"}))
        assert sorted(imap_flags(dovecot)) == [1, 2]
        assert len(imap_flags(dovecot, "Archive")) == 1
        await w.h.say(instruction("mail_move", {"uids": [1], "to_folder": "Nowhere"}))
        assert "there is no folder 'Nowhere'" in _text(results_of(w, "mail_move")[-1])
        await w.h.say(instruction("mail_reply", {"uid": 99, "body": "hello?"}))
        assert "no message with UID 99" in _text(results_of(w, "mail_reply")[-1])
        assert w.h.channel.approvals == []  # nobody is asked about a reply that cannot be
        await w.check_invariants()


_WITHOUT_MOVE = (
    "\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT CHILDREN"
    " NAMESPACE LIST-EXTENDED CONDSTORE ESEARCH LIST-STATUS{uidplus}\n"
)


@pytest.mark.parametrize("uidplus", [True, False])
async def test_a_move_without_the_move_extension_purges_only_what_it_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpRecorder, uidplus: bool
) -> None:
    """Without MOVE, a move is COPY, \\Deleted and EXPUNGE, and a plain EXPUNGE also purged
    every message the owner's own mail client had marked deleted (recoverable until then).
    With UIDPLUS only the moved messages are purged; without it nothing is moved."""
    extra = _WITHOUT_MOVE.format(uidplus=" UIDPLUS" if uidplus else "")
    with dovecot_server(extra=extra) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        for n in range(3):
            server.deliver(plain_mail("Shop <news@shop.example>", f"Offer {n}", "Buy now"))
        client = imaplib.IMAP4_SSL(
            "127.0.0.1", server.imaps_port, ssl_context=ssl.create_default_context()
        )
        client.login(USER, PASSWORD)
        client.select("INBOX")
        client.uid("store", "2", "+FLAGS", "(\\Deleted)")  # the owner's mail client did this
        client.logout()
        async with trust_world(tmp_path, **mail_settings(server, smtp_server)) as w:
            await w.h.say(instruction("mail_move", {"uids": [1], "to_folder": "Archive"}))
            said = _text(results_of(w, "mail_move")[-1])
        left = sorted(imap_flags(server))
        if uidplus:
            assert left == [2, 3] and len(imap_flags(server, "Archive")) == 1, (left, said)
        else:
            assert left == [1, 2, 3] and "not moved" in said, (left, said)
            assert imap_flags(server, "Archive") == {}


# ------------------------------------------------------------------------------ commands


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("from Boss@Corp.Example", "from", "boss@corp.example"),
        ("from corp.example", "from", "@corp.example"),
        ("from @corp.example", "from", "@corp.example"),
        ("subject  invoice   overdue", "subject", "invoice overdue"),
        ("unread older than a day", "unread_older", "1 day"),
        ("anything unread older than 1 day", "unread_older", "1 day"),
    ],
)
def test_watch_rules_are_read(text: str, kind: str, value: str) -> None:
    from agent.mail.rules import parse_rule

    assert parse_rule(text) == type(parse_rule(text))(kind, value)


async def test_a_malformed_watch_command_gets_usage_and_an_example(tmp_path: Path) -> None:
    closed = "imaps://me%40example.org@127.0.0.1:9"  # never reached by these commands
    async with trust_world(tmp_path, EMAIL_IMAP_URL=closed, EMAIL_PASSWORD="x") as w:
        answer = await w.h.say("/mail watch from nowhere")
        assert "“nowhere” is neither an address nor a domain" in answer
        assert "Usage: /mail watch from <address or domain>" in answer
        assert "Example: /mail watch from boss@corp.example" in answer
        assert "I don't know /mail remove" in await w.h.say("/mail remove 3")
        assert "Which rule?" in await w.h.say("/mail watch remove x")
        assert "no watch rule #7" in await w.h.say("/mail watch remove 7")
        assert "No mail watch rules" in await w.h.say("/mail watch list")
        assert await w.h.steward.stores.mail.rules() == []
        await w.h.say("hello")
        offered = set(w.model.requests[-1].tool_names)
        assert {"mail_search", "mail_read", "mail_send", "mail_reply", "mail_flag"} <= offered
    async with trust_world(tmp_path / "none") as w:  # no mailbox: no mail tools, a clear word
        assert "not set up" in await w.h.say("/mail watch from boss@corp.example")
        assert "not set up" in await w.h.say("/briefing mail on")
        await w.h.say("hello")
        assert not [n for n in w.model.requests[-1].tool_names if n.startswith("mail_")]


async def test_a_send_the_smtp_server_refuses_to_log_in_for_is_told_as_not_sent(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """The owner was told "I keep retrying with growing pauses" (the watcher's words): nothing
    retries a send, and the mail was lost unless they asked again."""
    settings = mail_settings(dovecot, smtp_server, EMAIL_PASSWORD="CANARY-wrong-pw")
    async with trust_world(tmp_path, **settings) as w:
        args = {"to": "ann@partner.example", "subject": "Hi", "body": "Hello."}
        await w.h.say(instruction("mail_send", args))
        [card] = _pending(w, "mail_send")
        await w.h.say(f"/approve {card.approval_id}")
        assert smtp_server.messages == []
        [told] = [t for t in w.h.channel.texts() if "refused my login" in t]
        assert "NOT sent" in told and "EMAIL_SMTP_URL" in told and "retrying" not in told
        assert all("CANARY-wrong-pw" not in t for t in w.h.channel.texts())
        assert "login refused" not in await w.h.say("/status")  # that line is the watcher's
