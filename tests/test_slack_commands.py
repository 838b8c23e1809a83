"""Commands as they are typed on the channel they are shown on: on Slack a command the app does
not declare (and /remind, /status, which Slack keeps) is `/steward <name>` in help, usage,
examples and confirmations; /allow and /revoke take a Slack mention (review58)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, post_signed, slash_command_form
from fakes.telegram import FakeTelegram
from harness import OWNER, OWNER_SLACK, slack_steward, telegram_channel, until

from bot.channels.formatting import slack_to_plain
from bot.commands import build_commands
from bot.commands.channel_text import SLACK_SLASH_COMMANDS, for_channel
from memory.people import Identity

DM = "DOWNER"
TG = 111
OFF = {"STEWARD_STREAMING": "off"}


async def _slash(url: str, fake: FakeSlack, command: str, text: str) -> str:
    """Send one slash command as the owner; wait for, and return, its answer in the DM."""
    before = len(fake.posted(DM))
    form = slash_command_form(
        command, text, user_id=OWNER_SLACK, channel_id=DM, response_url=fake.response_url()
    )
    status, _ = await post_signed(url, fake.signing_secret, form=form)
    assert status == 200
    await until(lambda: len(fake.posted(DM)) > before, f"the answer to {command} {text}")
    return str(fake.posted(DM)[-1].params["text"])


async def _telegram(tg: FakeTelegram, text: str) -> str:
    before = len(tg.sent_texts(TG))
    tg.push_message(text, user_id=TG)
    await until(lambda: len(tg.sent_texts(TG)) > before, f"the answer to {text}")
    return tg.sent_texts(TG)[-1]


async def test_slack_help_usage_and_confirmation_say_steward_remind(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """What Slack shows can be typed there: a bare /remind would run Slack's own reminder."""
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (
            _,
            _,
            url,
        ),
    ):
        help_all = await _slash(url, slack, "/steward", "help")
        start = await _slash(url, slack, "/steward", "start")
        help_one = await _slash(url, slack, "/steward", "help remind")
        missing = await _slash(url, slack, "/steward", "remind")
        wrong = await _slash(url, slack, "/steward", "remind 25:00 tea")
        confirmed = await _slash(url, slack, "/steward", "remind 2h water the plants")
        listed = await _slash(url, slack, "/steward", "remind cancel 9")
    for text in (help_all, start, help_one, missing, wrong, confirmed, listed):
        assert "/remind" not in text and "/status" not in text, text
    for text in (help_all, start):
        assert "/steward remind — " in text and "/steward status — " in text, text
        assert "/steward help — " in text and "/steward start — " in text, text
        assert "\n/goal — " in text and "\n/allow — " in text, "Slack's own commands stay"
    for text in (help_one, missing, wrong):
        assert "Example: /steward remind tomorrow 9:00 call mom" in text, text
        assert "/steward remind list" in text, text
    assert "Cancel with /steward remind cancel 1." in confirmed, confirmed
    assert "See /steward remind list." in listed, listed


async def test_telegram_keeps_remind_where_slack_says_steward_remind(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The same person, the same commands: each channel's answer is written for it."""
    env = OFF | {"STEWARD_OWNER": f"{OWNER},slack:{OWNER_SLACK},telegram:{TG}"}
    async with (
        FakeSlack() as slack,
        FakeTelegram() as tg,
        slack_steward(tmp_path, fake_model, slack, env=env) as (h, _, url),
        telegram_channel(h, tg),
    ):
        tg_help = await _telegram(tg, "/help")
        tg_set = await _telegram(tg, "/remind 2h water the plants")
        tg_allow = await _telegram(tg, "/allow")
        slack_set = await _slash(url, slack, "/steward", "remind 3h call mom")
        slack_allow = await _slash(url, slack, "/allow", "")
    assert "/remind — " in tg_help and "/status — " in tg_help and "/steward" not in tg_help
    assert "Cancel with /remind cancel 1." in tg_set, tg_set
    assert "Example: /allow telegram:123456789" in tg_allow, tg_allow
    assert "Cancel with /steward remind cancel 2." in slack_set, slack_set
    assert "Example: /allow slack:U0123ABCD" in slack_allow, slack_allow


async def test_allow_and_revoke_take_a_slack_mention(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """`/allow @ann` as Slack sends it escaped (`<@UANN|ann>`) admits that member; as a bare
    name (no member id in it) it says how to give the id, with a Slack example."""
    ann = Identity("slack", "UANN")
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (
            h,
            _,
            url,
        ),
    ):
        people = h.steward.stores.people
        allowed = await _slash(url, slack, "/allow", "<@UANN|ann>")
        assert await people.resolve(ann) is not None, allowed
        revoked = await _slash(url, slack, "/revoke", "<@UANN|ann>")
        assert await people.resolve(ann) is None, revoked
        again = await _slash(url, slack, "/allow", "<@UANN>")  # a mention without its name
        assert await people.resolve(ann) is not None, again
        bare = await _slash(url, slack, "/allow", "@bob")
    assert allowed.startswith("slack:UANN may talk to me now."), allowed
    assert revoked.startswith("slack:UANN can no longer talk to me."), revoked
    assert "member id" in bare and "Example: /allow slack:U0123ABCD" in bare, bare
    assert "telegram" not in bare, bare


def test_a_slack_mention_keeps_the_member_id() -> None:
    assert slack_to_plain("ask <@U123|ann> and <@W9>") == "ask @ann (slack:U123) and @W9"


def test_only_commands_slack_does_not_declare_are_rewritten() -> None:
    names = {c.name for c in build_commands()}
    text = "See /remind list, /goal add x, /status; /help. Data: /data/status http://h/status"
    assert for_channel(text, "slack", names) == (
        "See /steward remind list, /goal add x, /steward status; /steward help. "
        "Data: /data/status http://h/status"
    )
    assert for_channel(text, "telegram", names) == text
    assert for_channel(text, "console", names) == text
    assert for_channel("/steward remind 1", "slack", names) == "/steward remind 1"


def test_the_slack_slash_commands_are_those_of_the_manifest() -> None:
    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load((Path(__file__).parent.parent / "slack-manifest.yaml").read_text())
    declared = {c["command"].lstrip("/") for c in manifest["features"]["slash_commands"]}
    assert declared == SLACK_SLASH_COMMANDS


async def test_someones_own_words_shown_back_are_never_rewritten(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R61: every command reply was rewritten, so stored words came back altered ("type /remind
    for Slack's own" read "/steward remind", the opposite), and an action waiting for approval
    could be shown with other arguments than would run. Only Steward's own texts are."""
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (_, _, url),
    ):
        noted = await _slash(url, slack, "/remember", "in Slack type /remind for Slack's own")
        reminder = await _slash(url, slack, "/steward", "remind 2h check the /status page")
        listed = await _slash(url, slack, "/steward", "remind list")
    assert "in Slack type /remind for Slack's own" in noted
    assert "check the /status page" in reminder and "/steward remind cancel" in reminder
    assert "check the /status page" in listed
