"""R203: after an approved mail whose "250" was lost, the owner read "may have run: its answer
was lost (see below)" with nothing below, and, the resumed turn's model call failing, "please
try again in a little while": an invitation to send the mail twice.

aiosmtpd on loopback takes the whole message, then drops the connection before "250"
(tests/test_failures_r198_mail.py); mail_send runs as the owner approves it, through the
obedient model of the trust suite (tests/trust_world.py).
"""

from __future__ import annotations

from pathlib import Path

from mailservers import SmtpRecorder, mail_settings
from test_failures_r198_mail import ANN, takes_then_drops  # noqa: F401
from trust_world import instruction, trust_world


async def test_a_mail_that_may_have_gone_is_never_followed_by_try_again(
    tmp_path: Path,
    takes_then_drops: SmtpRecorder,  # noqa: F811
) -> None:
    async with trust_world(tmp_path, **mail_settings(None, takes_then_drops)) as w:
        await w.h.say(instruction("mail_send", ANN))
        [card] = [p for _, p in w.h.channel.approvals if p.tool == "mail_send"]
        w.model.fail(500, times=10)  # the resumed turn's model call fails
        decided = await w.h.say(f"/approve {card.approval_id}")
        said = w.h.channel.texts()
    assert len(takes_then_drops.messages) == 1  # it went out
    # the decision says what to check, in the tool's own words, and points at nothing else
    assert "mail_send may have run: its answer was lost" in decided, decided
    assert "Sent folder" in decided and "Message-ID" in decided, decided
    assert "see below" not in decided
    [failed] = [t for t in said if t.startswith("Sorry, I couldn't answer")]
    assert "This may already have been done" in failed and "mail_send" in failed, failed
    assert "check before asking again" in failed, failed
    assert "try again" not in failed, failed
