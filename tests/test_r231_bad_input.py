"""R231 (bad input everywhere): what a user or an operator types wrong is answered, not
dropped unsaid or blamed on something else.

- `/remind cancel 1 2 please` and `/goal done 1 2 finally` acted on #1 alone and said nothing
  of #2: now every id before the remark is taken, and a number after it is named as left out;
- an ANTHROPIC_API_KEY read with its line end started, and every turn was then "could not
  reach the model API";
- a `~user` path that cannot be expanded was a traceback from every `steward` command;
- a trailing space in STEWARD_DATA_DIR made a second, invisible data folder;
- `/memory search <30,000 characters>` quoted them all back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic, Reply
from harness import running_steward
from test_ops_cli import STEWARD, _env, one_line_error, steward

from agent.config import ConfigError, load_settings
from bot.commands.ids import leading_ids


async def test_remind_cancel_takes_every_id_and_names_a_number_left_out(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        for text in ("call mom", "pay rent", "water plants", "buy tea", "stretch"):
            assert "#" in await h.say(f"/remind 2h {text}")
        said = await h.say("/remind cancel 1 2 please")  # R234: "2" may be the remark's
        assert said == (
            "Cancelled #1: call mom\nNot taken as ids, so left out: “2 please” "
            "(if you meant #2 too: /remind cancel 2)."
        ), said
        assert await h.say("/remind cancel 2") == "Cancelled #2: pay rent"
        said = await h.say("/remind cancel 3 then 4")
        assert said == (
            "Cancelled #3: water plants\nNot taken as ids, so left out: “then 4” "
            "(if you meant #4 too: /remind cancel 4)."
        ), said
        said = await h.say("/remind cancel 5 ٢")  # an Arabic-Indic 2: no id, but said so
        assert said == "Cancelled #5: stretch\nNot taken as ids, so left out: “٢”.", said
        listed = await h.say("/remind list")
        assert "buy tea" in listed and "call mom" not in listed and "pay rent" not in listed


async def test_goal_done_and_drop_take_every_id_and_name_a_number_left_out(
    tmp_path: Path,
) -> None:
    async with running_steward(tmp_path, None) as h:
        for title in ("g1", "g2", "g3", "g4", "g5"):
            await h.say(f"/goal add {title}")
        said = await h.say("/goal done 1 2 weeks late")  # R234: closed #2 too
        assert "#1 g1 is done" in said and "#2 g2 is done" not in said, said
        assert said.endswith("(if you meant #2 too: /goal done 2)."), said
        said = await h.say("/goal done 2 finally")
        assert "#2 g2 is done" in said and "left out" not in said, said  # a remark
        said = await h.say("/goal drop 3 -4")
        assert "#3 g3 is dropped" in said and "left out: “-4”" in said, said
        said = await h.say("/goal done 4 or 5")
        assert said.endswith("(if you meant #5 too: /goal done 5)."), said
        assert await h.say("/goal done 5.") == "Goal #5 g5 is done. Check-ins stopped."
        assert "#4 g4 [done]" in await h.say("/goal list all")


def test_ids_after_a_remark_are_offered_cut() -> None:
    """A long remark is quoted cut, and only ids not already taken are offered."""
    assert leading_ids("#7, 8 and 9", "?").ids == [7, 8, 9]
    given = leading_ids("#7 " + "x" * 5_000 + " 7 12", "?")
    assert given.ids == [7]
    said = given.left_said("/goal done")
    assert len(said) < 200 and "x…”" in said, said
    assert said.endswith("(if you meant #12 too: /goal done 12)."), said


@pytest.mark.parametrize("key", ["sk-ant-abc\n", "sk-ant-abc\r\n", "  sk-ant-abc\t"])
def test_space_around_the_api_key_is_taken_off(key: str) -> None:
    settings = load_settings(_env_file=None, ANTHROPIC_API_KEY=key)
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-abc"


@pytest.mark.parametrize("key", ["sk-ant-SECRET\nsk-ant-other", "sk-ant SECRET", "  \n"])
def test_a_line_break_inside_the_api_key_is_refused_in_one_line(key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None, ANTHROPIC_API_KEY=key)
    message = str(refused.value)
    assert message.startswith("ANTHROPIC_API_KEY: ") and "\n" not in message, message
    assert "SECRET" not in message, message


async def test_an_api_key_with_its_line_end_reaches_the_model(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """It was "I could not reach the model API" on every turn, the network blamed."""
    fake_model.on_request(lambda r: Reply.text("Hello there."))
    async with running_steward(
        tmp_path, fake_model.base_url, ANTHROPIC_API_KEY="sk-ant-test\n"
    ) as h:
        assert await h.say("hello") == "Hello there."


@pytest.mark.parametrize("name", ["STEWARD_DATA_DIR", "STEWARD_MCP_CONFIG", "STEWARD_EMBEDDER_DIR"])
def test_a_tilde_that_cannot_be_expanded_is_one_line_naming_the_setting(
    tmp_path: Path, name: str
) -> None:
    result = steward(
        "audit", "verify", cwd=tmp_path, STEWARD_HOME=str(tmp_path), **{name: "~nosuchuser/x"}
    )
    line = one_line_error(result)
    assert result.returncode == 2, result
    assert line == (
        f"steward: configuration error: {name}: ~nosuchuser cannot be expanded (no such user, "
        "or no home directory): write the path in full"
    ), line


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_a_tilde_with_no_home_at_all_is_one_line() -> None:
    """`~/x` run as a uid with no HOME and no passwd entry (an arbitrary container uid). Where
    that uid cannot run this interpreter (a checkout or venv in a private folder, as a fresh
    `mktemp -d` clone is), it skips: the `~nosuchuser` cases above check the same refusal."""
    probe = subprocess.run(
        ["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", *STEWARD, "--help"],
        cwd="/",
        capture_output=True,
        timeout=90,
    )
    if probe.returncode != 0:
        pytest.skip("uid 4242 cannot run this interpreter here (its folders are private)")
    with tempfile.TemporaryDirectory() as where:  # in /tmp: every parent may be searched
        home = Path(where)
        home.chmod(0o777)
        env = _env(STEWARD_HOME=str(home), STEWARD_DATA_DIR="~/x")
        env.pop("HOME", None)
        result = subprocess.run(
            [
                "setpriv",
                "--reuid=4242",
                "--regid=4242",
                "--clear-groups",
                *STEWARD,
                "audit",
                "verify",
            ],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    line = one_line_error(result)
    assert result.returncode == 2 and "STEWARD_DATA_DIR: ~ cannot be expanded" in line, line


def test_space_around_a_path_setting_is_taken_off(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    settings = load_settings(
        _env_file=None,
        STEWARD_DATA_DIR=f"{tmp_path}/data ",
        STEWARD_MCP_CONFIG=f"\t{tmp_path}/mcp.json\n",
        STEWARD_EMBEDDER_DIR=f" {tmp_path}/model ",
    )
    assert settings.data_dir == tmp_path / "data", repr(str(settings.data_dir))
    assert settings.mcp_config == tmp_path / "mcp.json"
    assert settings.embedder_dir == tmp_path / "model"
    with pytest.raises(ConfigError, match=r"^STEWARD_DATA_DIR: is only spaces"):
        load_settings(_env_file=None, STEWARD_DATA_DIR="   ")


def test_a_trailing_space_in_env_makes_no_second_data_folder(tmp_path: Path) -> None:
    """Through .env as docker --env-file and a quoted value keep it: the real folder is used."""
    (tmp_path / ".env").write_text(f'STEWARD_DATA_DIR="{tmp_path}/data "\n')
    result = steward(
        "run", cwd=tmp_path, stdin="/remember the key is blue\n", STEWARD_HOME=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "steward.db").is_file()
    assert not (tmp_path / "data ").exists()


async def test_a_long_search_is_quoted_cut(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        said = await h.say("/memory search " + "x" * 30_000)
        assert said.startswith("No memories or messages match “xxx"), said[:80]
        assert said.endswith("x…”.") and len(said) < 200, len(said)


async def test_a_long_approval_id_is_quoted_cut(tmp_path: Path) -> None:
    """R231: `/approve <30,000 characters>` (and /deny) echoed all of them back."""
    async with running_steward(tmp_path, None) as h:
        for command in ("/approve", "/deny"):
            said = await h.say(f"{command} {'x' * 30_000}")
            assert said == "There is no approval request 'xxxxxxxxxxxxxxxx…'.", said[:100]
