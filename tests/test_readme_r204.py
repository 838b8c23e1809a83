"""R204, the README held to its word: a key pasted into a path setting is refused naming the
setting only ("never its value"), an MCP server name is letters and digits joined by single
hyphens, /usage in a group answers as /status does, and /help's line for /goal names rename."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import OWNER
from test_ops_cli import one_line_error, steward
from trust_world import trust_world

from agent.config import Settings
from agent.mcp import McpConfigError, load_mcp_config
from agent.types import Address, ChatKind, IncomingMessage

KEY = "sk-ant-api03-SECRETSECRETSECRET123"
PATHS = {
    "data_dir": "STEWARD_DATA_DIR",
    "embedder_dir": "STEWARD_EMBEDDER_DIR",
    "mcp_config": "STEWARD_MCP_CONFIG",
}


def test_every_path_setting_is_checked() -> None:
    """A path setting added later is in the list the tests below go through."""
    typed = {name for name, f in Settings.model_fields.items() if "Path" in repr(f.annotation)}
    assert typed == set(PATHS)


@pytest.mark.parametrize("name", sorted(PATHS.values()))
@pytest.mark.parametrize("where", [KEY, f"keys/{KEY}", f"{{home}}/{KEY}/mcp.json"])
def test_a_key_in_a_path_setting_is_refused_naming_the_setting(
    tmp_path: Path, name: str, where: str
) -> None:
    """`STEWARD_DATA_DIR=sk-ant-…` started, logged the path, showed it in /status and made a
    folder named after the key; `STEWARD_MCP_CONFIG=sk-ant-…` printed it in the error line."""
    (tmp_path / ".env").write_text(f"{name}={where.format(home=tmp_path)}\n")
    result = steward("run", cwd=tmp_path, stdin="/status\n", STEWARD_HOME=str(tmp_path))
    line = one_line_error(result)
    assert result.returncode == 2, result
    assert line.startswith(f"steward: configuration error: {name}: looks like a secret key")
    assert "SECRET" not in result.stdout + result.stderr
    assert not any("SECRET" in p.name for p in tmp_path.rglob("*")), list(tmp_path.rglob("*"))


def test_an_existing_folder_with_a_long_name_is_taken(tmp_path: Path) -> None:
    """A model in a Hugging Face cache sits under `snapshots/<40 hex digits>`: a folder that
    is there is someone's folder, not a pasted key."""
    model = tmp_path / "models--sentence-transformers--all-MiniLM-L6-v2" / ("c9745ed1" * 5)
    model.mkdir(parents=True)
    settings = Settings(_env_file=None, embedder_dir=model, data_dir=tmp_path / "data")
    assert settings.embedder_dir == model


@pytest.mark.parametrize(
    "name",
    [
        "my-personal-assistant-data-2024",
        "steward_data_for_the_whole_family",
        "2026-12-07-steward",
        "Personal-Assistant-Data-v2",  # R210: these were refused
        "Steward_Data_Copy_Dec2025",
        "data-2025-12-07T08-30-00Z",
        "models--sentence-transformers--all-MiniLM-L6-v2",
        "paraphrase-multilingual-MiniLM-L12-v2",
        "sk-2024",
    ],
)
def test_a_long_folder_name_of_words_is_not_taken_for_a_key(tmp_path: Path, name: str) -> None:
    """Any 24 letters, digits and hyphens in a row met the key check of error lines: a data
    folder someone names in words must not be refused on the first start, before it exists."""
    settings = Settings(_env_file=None, data_dir=tmp_path / name)
    assert settings.data_dir == tmp_path / name


def test_a_random_token_without_a_known_prefix_is_taken_for_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="looks like a secret key"):
        Settings(_env_file=None, data_dir=tmp_path / "AKIA4Jw9tQ2mVbX7pLr8Zs3N")
    with pytest.raises(ValueError, match="looks like a secret key"):  # a bot token
        Settings(_env_file=None, data_dir=tmp_path / "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")


def test_a_missing_mcp_file_names_the_setting_not_a_key_in_its_path(tmp_path: Path) -> None:
    held = tmp_path / KEY
    held.mkdir()
    with pytest.raises(McpConfigError) as raised:
        load_mcp_config(held / "mcp.json", {}, required=True)
    message = str(raised.value)
    assert message.startswith("STEWARD_MCP_CONFIG: no such file") and "SECRET" not in message
    plain = Path("/nonexistent/mcp.json")  # (pytest's folder names are long enough to hide)
    with pytest.raises(McpConfigError, match=f"no such file \\({plain}\\)"):
        load_mcp_config(plain, {}, required=True)


@pytest.mark.parametrize("name", ["a--b", "a-", "-a", "x" * 33])
def test_a_server_name_is_single_hyphens_only(tmp_path: Path, name: str) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {name: {"command": "true"}}}))
    with pytest.raises(McpConfigError, match="single hyphens"):
        load_mcp_config(path, {})


def test_good_server_names_are_taken(tmp_path: Path) -> None:
    names = ["a", "my-server-2", "x" * 32, "A1-b2-c3"]
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {n: {"command": "true"} for n in names}}))
    assert [spec.name for spec in load_mcp_config(path, {}).servers] == names


async def _in_group(w, text: str) -> str:  # type: ignore[no-untyped-def]
    await w.h.router.dispatch(
        IncomingMessage(
            sender=OWNER, address=Address("test", "g1"), text=text, chat_kind=ChatKind.GROUP
        )
    )
    return w.h.channel.texts("g1")[-1]


async def test_usage_in_a_group_answers_as_status_does(tmp_path: Path) -> None:
    """/usage posted the owner's tokens and cost to everyone in the group."""
    async with trust_world(tmp_path) as w:
        await w.h.say("hello")  # one paid turn in private
        said = await _in_group(w, "/usage")
        assert "private chat" in said and "tokens" not in said, said
        assert (await _in_group(w, "/status")).endswith(said)
        assert "tokens" in await w.h.say("/usage")  # in private, as before


async def test_help_names_goal_rename(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        line = next(x for x in (await w.h.say("/help")).splitlines() if x.startswith("/goal"))
        assert "rename" in line, line
