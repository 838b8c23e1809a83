"""Bad input over the real wire: a 100 KB message, binary garbage, a command with 10,000
arguments, malicious file names in tool calls, updates for chats Steward does not know. Each is
answered clearly or refused, and the process is still alive and answering afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.telegram import FakeTelegram
from faults_support import OWNER_TG, StewardProcess, eventually, query, record, steward_env

STRANGER_TG = 2002
EVIL_NAMES = (
    "../../etc/x",
    "/etc/steward-fault",
    "notes\x00.txt",
    "a" * 5000,
    "x/" * 2100 + "deep.txt",  # longer than PATH_MAX
    "..",
    "\u202etxt.exe",  # may be written, inside the workspace only
)
MUST_REFUSE = EVIL_NAMES[:-1]


def _written_outside(data: Path) -> list[Path]:
    """Files holding the payload anywhere but plainly inside the workspace."""
    outside = [p for p in (Path("/etc/x"), Path("/etc/steward-fault")) if p.exists()]
    outside += [p for p in (data.parent / "etc", data.parent.parent / "etc") if p.exists()]
    workspace = data / "workspace"
    for path in data.rglob("*"):
        if path.is_file() and path.read_bytes() == b"pwned" and workspace not in path.parents:
            outside.append(path)
    return outside


def _model(request: RecordedRequest) -> Reply:
    if request.tool_results:
        return Reply.text("Done with the tools.")
    text = request.last_user_text.rsplit("</context>", 1)[-1].strip()
    if text.startswith("write evil "):
        index = int(text.removeprefix("write evil "))
        return Reply.tool_use("write_file", {"path": EVIL_NAMES[index], "content": "pwned"})
    if len(text) > 1000:
        return Reply.text(f"got {len(text)} characters")
    return Reply.text("re: " + text)


async def test_bad_input_is_answered_or_refused_and_never_crashes(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    failures: list[str] = []
    data = tmp_path / "data"
    async with FakeTelegram() as tg:
        env = steward_env(data, fake_model, tg)
        steward = StewardProcess(env, tmp_path / "steward.log")
        await steward.start()
        await tg.wait_for("getUpdates", timeout=40)
        probes = iter(range(1000))

        async def still_answering() -> None:
            text = f"still there {next(probes)}?"
            tg.push_message(text, user_id=OWNER_TG)
            await eventually(
                lambda: f"re: {text}" in tg.sent_texts(OWNER_TG), 20, f"the answer to {text!r}"
            )

        async def case(name: str, run: Callable[[], Awaitable[None]]) -> None:
            try:
                await run()
                assert steward.alive, "Steward exited:\n" + steward.current_log()[-3000:]
                await still_answering()
                record("bad input", True)
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
                record("bad input", False)

        async def reply_to(text: str, **kwargs: object) -> list[str]:
            before = len(tg.sent_texts(OWNER_TG))
            tg.push_message(text, user_id=OWNER_TG, **kwargs)  # type: ignore[arg-type]
            await eventually(
                lambda: len(tg.sent_texts(OWNER_TG)) > before, 20, f"a reply to {text[:40]!r}"
            )
            return tg.sent_texts(OWNER_TG)[before:]

        async def huge_message() -> None:
            said = await reply_to("y" * 100_000)
            assert any("characters" in s or "long" in s.lower() for s in said), said
            assert all(len(s) <= 4096 for s in said)

        async def garbage() -> None:
            junk = "\ud800\udfff\x00\x01\x07\x1b[31m\ufffe\uffff" + bytes(range(256)).decode(
                "latin-1"
            )
            said = await reply_to(junk)
            assert said and all(s.strip() for s in said), said

        async def garbage_command() -> None:
            said = await reply_to("/remind \ud800\x00 \x1b 10m")
            assert said, said

        async def ten_thousand_arguments() -> None:
            for command in ("/remind", "/memory search", "/help", "/nosuchcommand", "/goal"):
                args = " ".join(f"a{i}" for i in range(10_000))
                said = await reply_to(f"{command} {args}")
                assert said and all(len(s) <= 4096 for s in said), (command, said)

        async def evil_file_names() -> None:
            for index, name in enumerate(EVIL_NAMES):
                asked = len(fake_model.requests)
                said = await reply_to(f"write evil {index}")
                assert said, name
                results = [r.tool_results for r in fake_model.requests[asked:] if r.tool_results]
                assert results, f"no tool result for {name[:40]!r}"
                result = results[-1][0]
                if name in MUST_REFUSE:
                    assert result.get("is_error") is True, (name[:40], result)
            assert await asyncio.to_thread(_written_outside, data) == []

        async def unknown_chats() -> None:
            # a stranger in a private chat: refused once, clearly
            tg.push_message("hi, who are you?", user_id=STRANGER_TG, first_name="Mallory")
            await eventually(lambda: tg.sent_texts(STRANGER_TG), 20, "the stranger's refusal")
            assert f"telegram:{STRANGER_TG}" in tg.sent_texts(STRANGER_TG)[0]
            # updates for chats nobody introduced: a channel post, a group Steward never joined,
            # a message without a sender, an update type it does not handle
            now = int(time.time())
            channel = {"id": -1009876543210, "type": "channel", "title": "Somewhere"}
            tg.push_update(
                {"channel_post": {"message_id": 7, "date": now, "chat": channel, "text": "/status"}}
            )
            group = {"id": -1001111111111, "type": "supergroup", "title": "Unknown"}
            tg.push_update(
                {"message": {"message_id": 8, "date": now, "chat": group, "text": "hello group"}}
            )
            tg.push_update(
                {
                    "message": {
                        "message_id": 9,
                        "date": now,
                        "chat": group,
                        "from": {"id": 4242, "is_bot": False, "first_name": "Z"},
                        "text": "/status",
                    }
                }
            )
            tg.push_update(
                {
                    "poll": {
                        "id": "1",
                        "question": "?",
                        "options": [],
                        "total_voter_count": 0,
                        "is_closed": False,
                        "is_anonymous": True,
                        "type": "regular",
                        "allows_multiple_answers": False,
                    }
                }
            )
            tg.push_callback("ap:zzzz:y", user_id=OWNER_TG, chat_id=OWNER_TG, message_id=99999)
            tg.push_callback("\x00garbage", user_id=OWNER_TG, chat_id=OWNER_TG, message_id=99998)
            await eventually(lambda: not tg.pending_updates, 20, "the updates to be consumed")
            assert not tg.sent_texts(-1009876543210)

        for name, run in [
            ("a 100 KB message", huge_message),
            ("binary garbage in a message", garbage),
            ("binary garbage in a command", garbage_command),
            ("commands with 10,000 arguments", ten_thousand_arguments),
            ("malicious file names", evil_file_names),
            ("updates for unknown chats", unknown_chats),
        ]:
            await case(name, run)
        code = await steward.stop()
    assert not failures, "\n".join(failures) + f"\nlog: {steward.log}"
    assert code == 0, steward.current_log()[-3000:]
    assert "Traceback" not in steward.log_text(), steward.log_text()[-5000:]
    stored = query(data / "steward.db", "SELECT count(*) FROM messages WHERE status='received'")
    assert stored == [(0,)]
