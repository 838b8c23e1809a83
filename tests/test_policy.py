"""The policy file: defaults written on first run, checked by `steward policy check`, rules on
parsed argv, per-user rules, "allow always", and a bad file refusing to start."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import running_steward
from trust_world import CANARY_KEY, instruction, obedient_model

from agent.policy import (
    DEFAULT_POLICY,
    Decision,
    PolicyEngine,
    PolicyError,
    Rule,
    argv_matches,
    exact_value,
    load_policy,
)
from agent.sandbox import os_sandbox_available
from agent.types import TurnRequest

STEWARD = [sys.executable, "-m", "bot.cli"]

# "allow always" on a card of a confined command binds the rule to confinement (review 75)
CONFINED = " confined" if os_sandbox_available() else ""


def _run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STEWARD, *args],
        env={**os.environ, "STEWARD_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_first_run_writes_the_commented_defaults(tmp_path: Path) -> None:
    policy = load_policy(tmp_path / "policy.toml")
    assert (tmp_path / "policy.toml").read_text() == DEFAULT_POLICY
    assert policy.rules[0].argv == "git status *"


def test_policy_check_prints_the_effective_rules(tmp_path: Path) -> None:
    load_policy(tmp_path / "policy.toml")  # as the first start writes it (check never creates it)
    result = _run(["policy", "check"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "external_effect  ask" in result.stdout
    assert "tool=shell argv='git status *' → allow" in result.stdout
    assert "shell            external_effect" in result.stdout
    assert "WARNING" not in result.stdout  # the defaults name real tools
    # a misspelled tool is valid TOML and a valid rule, but matches nothing: said so
    with (tmp_path / "policy.toml").open("a") as policy:
        policy.write('\n[[rules]]\ntool = "shel"\nargv = "rm -rf *"\ndecision = "allow"\n')
    warned = _run(["policy", "check"], tmp_path)
    assert warned.returncode == 0 and "WARNING: a rule names tool 'shel'" in warned.stdout
    # so is an MCP server's name that is not in mcp.json (its tools are not known until it runs)
    (tmp_path / "mcp.json").write_text('{"mcpServers": {"github": {"command": "gh-mcp"}}}')
    with (tmp_path / "policy.toml").open("a") as policy:
        policy.write('\n[[rules]]\ntool = "mcp__githb__*"\ndecision = "deny"\n')
        policy.write('\n[[rules]]\ntool = "mcp__github__delete_repo"\ndecision = "deny"\n')
        policy.write('\n[[rules]]\ntool = "mcp__git*__list"\ndecision = "allow"\n')
    warned = _run(["policy", "check"], tmp_path)
    assert warned.returncode == 0, warned.stderr
    [mcp_warning] = [line for line in warned.stdout.splitlines() if "MCP server" in line]
    assert "'mcp__githb__*', but no MCP server 'githb' is configured" in mcp_warning


async def test_a_rule_that_matches_nothing_is_logged_at_start(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    """A deny on a misspelt MCP server (`mcp__githb__*`) protected nothing, and only `steward
    policy check` said so: the start's log says it too. The defaults (`mail_send` with no
    mailbox) are not warned of."""
    async with running_steward(tmp_path, fake_model.base_url):
        pass
    assert "matches nothing" not in caplog.text
    (tmp_path / "policy.toml").write_text(
        '[[rules]]\ntool = "mcp__githb__*"\ndecision = "deny"\n' + DEFAULT_POLICY
    )
    async with running_steward(tmp_path, fake_model.base_url):
        pass
    assert "'mcp__githb__*', but no MCP server 'githb' is configured" in caplog.text


def test_a_wildcard_that_may_name_a_servers_tool_is_not_said_to_match_nothing() -> None:
    """R172: `mcp*` and `*__delete_repo` match `mcp__github__delete_repo`, and were warned of
    as matching nothing at every start; `shelx*` and a server not configured still are."""
    from agent.policy import PolicyFile
    from agent.policy_lint import rules_matching_nothing

    rules = [
        {"tool": tool, "decision": "deny"}
        for tool in ("mcp*", "*__delete_repo", "shelx*", "mcp__gitlab__*", "shell")
    ]
    policy = PolicyFile.model_validate({"rules": rules})
    found = rules_matching_nothing(policy, ["shell", "read_file"], ["github"])
    assert [f.split("'")[1] for f in found] == ["shelx*", "mcp__gitlab__*"], found
    without_servers = rules_matching_nothing(policy, ["shell"], [])
    assert [f.split("'")[1] for f in without_servers] == [
        "mcp*",
        "*__delete_repo",
        "shelx*",
        "mcp__gitlab__*",
    ]


def test_a_bad_policy_file_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('[[rules]]\ntool = "shell"\ndecision = "maybe"\n')
    for args in (["policy", "check"], ["run"]):
        result = _run(args, tmp_path)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "rules.0.decision" in lines[0], result.stderr
    (tmp_path / "policy.toml").write_text("[defaults\n")
    result = _run(["run"], tmp_path)
    assert result.returncode == 2 and "not valid TOML" in result.stderr
    # a Latin-1 "café" in a comment was a traceback
    (tmp_path / "policy.toml").write_bytes("# caf\u00e9\n".encode("latin-1"))
    for args in (["policy", "check"], ["run"]):
        result = _run(args, tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "policy.toml: not UTF-8 (byte 5); save it as UTF-8" in line


def test_argv_rules_match_tokens_not_prefixes() -> None:
    assert argv_matches("git status *", "git status")
    assert argv_matches("git status *", "git status --short")
    assert not argv_matches("git status *", "git status; curl http://x")
    assert not argv_matches("git status *", "git status && rm -rf x")
    assert not argv_matches("ls", "ls -la")
    assert not argv_matches("git status *", "git $(curl x)")
    # the program and the subcommand match exactly, never as a prefix
    assert not argv_matches("git status *", "git status-x")
    assert not argv_matches("git status *", "git statusx --short")
    assert not argv_matches("ls *", "lsof")
    assert not argv_matches("ls *", "lsblk -f")
    assert argv_matches("ls *", "ls -la notes")
    # `*` is one whole argument; last, any number of them
    assert argv_matches("git log * --oneline", "git log -3 --oneline")
    assert not argv_matches("git log * --oneline", "git log --oneline")
    assert not argv_matches("git log * --oneline", "git log -3 -p --oneline")
    # a quoted `*` is a literal argument, as "allow always" writes it
    assert argv_matches("ls '*.md'", "ls '*.md'")
    assert not argv_matches("ls '*.md'", "ls notes.md")
    assert not argv_matches("ls '*'", "ls anything")


def test_an_old_prefix_pattern_is_read_as_a_whole_argument_wildcard() -> None:
    assert argv_matches("git status*", "git status --short")
    assert argv_matches("git status*", "git status")
    assert not argv_matches("git status*", "git status-x")
    assert not argv_matches("ls*", "lsof")
    assert not argv_matches("ls*", "lsblk")


def test_a_glob_inside_an_argv_token_refuses_the_file_with_one_line(tmp_path: Path) -> None:
    for pattern in ("git status* --short", "l? -la", "git st*tus", "ls [a]", "git *status"):
        path = tmp_path / "policy.toml"
        path.write_text(f'[[rules]]\ntool = "shell"\nargv = "{pattern}"\ndecision = "allow"\n')
        try:
            load_policy(path)
        except PolicyError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{pattern!r} was accepted")
        assert "\n" not in message and "rules.0.argv" in message
        assert "glob character inside it" in message
    path.write_text('[[rules]]\ntool = "shell"\nargv = "git status*"\ndecision = "allow"\n')
    assert load_policy(path).rules[0].argv == "git status*"  # old default files still load


def test_a_persons_section_is_found_however_their_identity_is_spelled(tmp_path: Path) -> None:
    """`[users."Telegram:2002"]` or `[users."slack:u0ann"]` loaded and matched nobody (channels
    report `telegram:2002`, `slack:U0ANN`): the rule meant for them silently never applied. A
    key that is no identity at all refuses the file, naming it."""
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[users."Telegram:2002".rules]]\ntool = "memory_search"\ndecision = "deny"\n'
        '[[users."slack:u0ann".rules]]\ntool = "memory_search"\ndecision = "deny"\n'
        '[[users."SLACK:U0ANN".rules]]\ntool = "goal_list"\ndecision = "deny"\n'
    )
    users = load_policy(path).users
    assert sorted(users) == ["slack:U0ANN", "telegram:2002"]
    assert [r.tool for r in users["slack:U0ANN"].rules] == ["memory_search", "goal_list"]
    path.write_text('[[users."mallory".rules]]\ntool = "memory_search"\ndecision = "deny"\n')
    with pytest.raises(PolicyError, match="mallory"):
        load_policy(path)


class _NoOwnerChats:
    async def is_owner_chat(self, channel: str, chat_id: str) -> bool:
        return False

    async def is_own_chat(self, user_id: int, channel: str, chat_id: str) -> bool:
        return False


def test_allow_always_writes_an_exact_rule_even_for_a_star(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    engine = PolicyEngine(load_policy(path), _NoOwnerChats(), path)
    assert engine.add_rule_for("shell", {"command": "rm -rf '*'"}) == (
        "tool=shell argv=\"rm -rf '*'\" → allow"
    )
    rule = load_policy(path).rules[-1]  # written, and the file still loads
    assert rule.argv is not None and argv_matches(rule.argv, "rm -rf '*'")
    assert not argv_matches(rule.argv, "rm -rf notes")
    assert not argv_matches(rule.argv, "rm -rf '*' more")


async def test_a_rule_allows_network_access_only_when_it_says_so(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(obedient_model)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(instruction("shell", {"command": "ls", "network": True}))
        ((_, prompt),) = h.channel.approvals  # `ls *` allows ls, but not with the network
        assert "network: ON" in prompt.preview
        reply = await h.say(f"/approve {prompt.approval_id} always")
        assert f"argv='ls' network=true{CONFINED} → allow" in reply
        owner = await h.steward.stores.people.owner()
        assert owner is not None and h.steward.policy is not None
        request = TurnRequest(kind="chat", user=owner, chat=None, address=None, text="")
        ctx = h.steward.runner.tool_context(request, 0)
        shell = h.steward.tools.get("shell")
        assert shell is not None
        decide = h.steward.policy.decide
        assert (await decide(shell, {"command": "ls", "network": True}, ctx)).decision == "allow"
        assert (await decide(shell, {"command": "ls -a", "network": True}, ctx)).decision == "ask"
        assert (await decide(shell, {"command": "ls -a", "network": False}, ctx)).decision == (
            "allow"
        )
    assert "network = true" in (tmp_path / "policy.toml").read_text()


async def test_per_user_rules_and_allow_always(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    fake_model.on_request(obedient_model)
    data = tmp_path / "data"
    data.mkdir()
    (data / "policy.toml").write_text(
        DEFAULT_POLICY + '\n[users."test:owner"]\nrules = [{ tool = "shell", argv = "date",'
        ' decision = "deny" }]\n'
    )
    async with running_steward(data, fake_model.base_url) as h:
        await h.say(instruction("shell", {"command": "date"}))
        assert "refused: policy rule" in str(fake_model.requests[-1].tool_results)
        await h.say(instruction("shell", {"command": "echo hello"}))
        ((_, prompt),) = h.channel.approvals
        reply = await h.say(f"/approve {prompt.approval_id} always")
        assert f"Added to the policy file: tool=shell argv='echo hello'{CONFINED} → allow" in reply
        # (fresh chats: the command's output in the history would taint the next turn)
        await h.say(instruction("shell", {"command": "echo hello"}), chat="c2")
        assert len(h.channel.approvals) == 1  # the same command now runs unasked
        await h.say(instruction("shell", {"command": "echo hello world"}), chat="c3")
        assert len(h.channel.approvals) == 2  # and only that exact command
        changes = await h.steward.stores.audit.recent(kind="policy.changed")
        assert changes and changes[0].actor == "test:owner"
    assert 'argv = "echo hello"' in (data / "policy.toml").read_text()


async def test_audit_command_shows_recent_events(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("hello")
        reply = await h.say("/audit 5")
        assert "message.sent" in reply and "Chain verified" in reply
        assert "Usage: /audit" in await h.say("/audit lots")


def test_no_secret_reaches_the_logs(tmp_path: Path) -> None:
    result = subprocess.run(
        [*STEWARD, "run"],
        env={
            **os.environ,
            "STEWARD_DATA_DIR": str(tmp_path),
            "STEWARD_LOG_LEVEL": "DEBUG",
            "ANTHROPIC_API_KEY": CANARY_KEY,
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
            "STEWARD_MODEL_RETRIES": "0",
        },
        input="/status\nhello\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "could not reach the model API" in result.stdout
    assert CANARY_KEY not in result.stdout + result.stderr
    assert "DEBUG" in result.stderr


async def test_allow_always_matches_only_the_approved_arguments(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """An MCP tool takes any extra key: the rule "always" wrote for create_issue(repo, title)
    must not allow the same call with a `body` added, nor any other text."""
    import mcp.types as mt

    from agent.mcp.bridge import McpTool
    from agent.tools.registry import Risk

    async def invoke(*_: object) -> None:
        raise AssertionError("not called")

    listed = mt.Tool(name="create_issue", description="an issue", inputSchema={"type": "object"})
    tool = McpTool.of("gh", "gh-server", listed, Risk.EXTERNAL_EFFECT, invoke)  # type: ignore[arg-type]
    assert tool is not None
    async with running_steward(tmp_path, fake_model.base_url) as h:
        engine = h.steward.policy
        owner = await h.steward.stores.people.owner()
        assert engine is not None and owner is not None
        approved = {"repo": "me/notes", "title": 'todo 😀 \x7f "q" [x]*'}
        assert "exact" in engine.add_rule_for(tool.name, approved)
        request = TurnRequest(kind="chat", user=owner, chat=None, address=None, text="")
        ctx = h.steward.runner.tool_context(request, 0)
        assert (await engine.decide(tool, dict(approved), ctx)).decision == "allow"
        for other in (
            {**approved, "body": "anything at all"},
            {**approved, "title": "todo"},
            {"repo": "me/notes"},
        ):
            assert (await engine.decide(tool, other, ctx)).decision == "ask", other
        # values keep their type: a rule for false / null did allow the strings "False" and
        # "None" (true to most servers); a string cannot pass for a marked value either
        typed = {"path": "tmp", "recursive": False, "limit": None, "note": "json:false"}
        engine.add_rule_for(tool.name, typed)
        assert (await engine.decide(tool, dict(typed), ctx)).decision == "allow"
        for other in (
            {**typed, "recursive": "False"},
            {**typed, "limit": "None"},
            {**typed, "recursive": "json:false"},
            {**typed, "note": False},
        ):
            assert (await engine.decide(tool, other, ctx)).decision == "ask", other
        # the rule is in the file as written, and the file still loads
        rule, _ = [r for r in load_policy(tmp_path / "policy.toml").rules if r.exact]
        assert rule.tool == tool.name and set(rule.args) == {"repo", "title"}


async def test_a_rule_that_cannot_be_written_leaves_the_turn_finished(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The approved call has run when the rule is written: if the policy file cannot be
    written, "always" says the call was approved once, and the paused turn still resumes."""
    fake_model.on_request(obedient_model)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(instruction("send_message", {"channel": "test", "chat": "9", "text": "hi"}))
        ((_, prompt),) = h.channel.approvals
        policy = tmp_path / "policy.toml"
        policy.unlink()
        policy.mkdir()  # unreadable and unwritable as a file, even for root
        reply = await h.say(f"/approve {prompt.approval_id} always")
        assert "no rule was added" in reply, reply
        ran = await h.steward.stores.audit.recent(kind="tool.ran")
        assert [e.subject for e in ran] == ["send_message"]
        approval = await h.steward.stores.approvals.get(prompt.approval_id)
        assert approval is not None
        turn = {t.id: t for t in await h.turns()}[approval.turn_id]
        assert turn.status != "awaiting_approval", turn.status
        assert await h.steward.stores.audit.recent(kind="policy.not_changed")


async def test_a_broken_character_from_the_model_does_not_fail_the_turn(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """JSON may carry a lone surrogate (`\\ud83d`); it has no UTF-8 form, so stored in the
    approval, sent, or written into the policy file it failed the turn half-way. It arrives as
    U+FFFD, and "always" writes a rule that loads."""

    def model(request: RecordedRequest) -> Reply:
        if request.tool_results:
            return Reply.text("done")
        return Reply.tool_use("send_message", {"channel": "test", "chat": "9", "text": "a\ud83db"})

    fake_model.on_request(model)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("post it")  # the turn waits for the approval
        ((_, prompt),) = h.channel.approvals
        assert "a\ufffdb" in prompt.preview
        reply = await h.say(f"/approve {prompt.approval_id} always")
        assert "Added to the policy file" in reply, reply
        assert "done" in h.channel.texts("c1")  # the paused turn finished
    assert load_policy(tmp_path / "policy.toml").rules[-1].args["text"] == "a\ufffdb"


def test_an_identity_is_shown_and_only_for_mcp_tools() -> None:
    """An MCP rule bound to one version of its tool printed like an unbound one, and an
    `identity` on a built-in tool (whose fingerprint is the state of files) loaded silently."""
    from pydantic import ValidationError

    from agent.policy import Rule

    bound = Rule(tool="mcp__gh__create_issue", identity="abc123456789", decision="allow")
    assert "identity=abc12345…" in bound.describe()
    with pytest.raises(ValidationError, match="identity = … is for MCP tools only"):
        Rule(tool="shell", identity="zz", decision="allow")


def test_an_always_rule_is_described_with_the_values_as_called() -> None:
    """Glob-escaped and marked with its type, `labels=["bug","p1"]` read `'json:[[]"bug",…'`
    on the confirmation (R134)."""
    rule = Rule(
        tool="mcp__gh__create_issue",
        args={"labels": glob.escape(exact_value(["bug", "p1"])), "title": glob.escape("a*b")},
        exact=True,
        decision=Decision.ALLOW,
    )
    assert rule.describe().startswith(
        'tool=mcp__gh__create_issue labels=["bug","p1"] title=\'a*b\''
    )


async def test_a_rule_on_a_path_or_an_address_holds_however_it_is_spelled(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R154: rules denying `private/*`, `*.sh` and a tracker's pages were passed by `./private`,
    `run.sh/.`, `private\\x` and `HTTPS://TRACKER.example.:443/p`, which the tools read as the
    same file or page. The arguments are made canonical before any rule sees them."""
    fake_model.on_request(obedient_model)
    rules = [
        ("read_file", 'path = "private/*"'),
        ("list_files", 'path = "private"'),
        ("write_file", 'path = "*.sh"'),
        ("web_fetch", 'url = "https://tracker.example/*"'),
    ]
    (tmp_path / "policy.toml").write_text(  # first in the file: the first rule that matches decides
        "".join(f'[[rules]]\ntool = "{t}"\nargs = {{ {a} }}\ndecision = "deny"\n' for t, a in rules)
        + DEFAULT_POLICY
    )
    private = tmp_path / "workspace" / "private"
    private.mkdir(parents=True)
    (private / "diary.md").write_text("my secret diary\n")
    calls = [
        ("read_file", {"path": "./private/diary.md"}),
        ("read_file", {"path": "private//diary.md"}),
        ("read_file", {"path": "private\\diary.md"}),
        ("list_files", {"path": "./private/."}),
        ("write_file", {"path": "run.sh/.", "content": "echo hi"}),
        ("write_file", {"path": "./run.sh", "content": "echo hi"}),
        ("web_fetch", {"url": "HTTPS://TRACKER.example./p"}),
        ("web_fetch", {"url": "https://tracker.example:443/p"}),
        ("web_fetch", {"url": "https://tracker.example"}),
    ]
    async with running_steward(tmp_path, fake_model.base_url) as h:
        for index, (tool, arguments) in enumerate(calls):
            await h.say(instruction(tool, arguments), chat=f"c{index}")
            results = str(fake_model.requests[-1].tool_results)
            assert "refused: policy rule" in results, (tool, arguments, results)
        assert not h.channel.approvals
    assert not (tmp_path / "workspace" / "run.sh").exists()
    assert not any("my secret diary" in str(r.tool_results) for r in fake_model.requests)


async def test_a_rule_that_denies_or_asks_holds_through_a_link(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R154: `shared/readme.md`, a link to `private/diary.md`, was read though a rule denied
    `private/*` (and an earlier rule allowed `shared/*`): a rule that denies or asks holds for
    the file a call reaches; one that allows, only for the path as called."""
    import os

    fake_model.on_request(obedient_model)
    rules = [
        ("read_file", 'path = "shared/*"', "allow"),
        ("read_file", 'path = "private/*"', "deny"),
        ("write_file", 'path = "private/*"', "ask"),
    ]
    (tmp_path / "policy.toml").write_text(
        "".join(
            f'[[rules]]\ntool = "{t}"\nargs = {{ {a} }}\ndecision = "{d}"\n' for t, a, d in rules
        )
        + DEFAULT_POLICY
    )
    workspace = tmp_path / "workspace"
    (workspace / "private").mkdir(parents=True)
    (workspace / "private" / "diary.md").write_text("my secret diary\n")
    (workspace / "shared").mkdir()
    (workspace / "shared" / "hello.md").write_text("hello\n")
    os.symlink("../private/diary.md", workspace / "shared" / "readme.md")
    os.symlink("../private", workspace / "shared" / "p")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        for n, path in enumerate(("shared/readme.md", "shared/p/diary.md")):
            await h.say(instruction("read_file", {"path": path}), chat=f"r{n}")
            results = str(fake_model.requests[-1].tool_results)
            assert "refused: policy rule" in results and "private/*" in results, results
        await h.say(instruction("read_file", {"path": "shared/hello.md"}), chat="plain")
        assert "hello" in str(fake_model.requests[-1].tool_results)
        await h.say(instruction("write_file", {"path": "shared/readme.md", "content": "x"}))
        assert len(h.channel.approvals) == 1, "a write through the link asks, as the rule says"
    assert (workspace / "private" / "diary.md").read_text() == "my secret diary\n"
    assert not any("my secret diary" in str(r.tool_results) for r in fake_model.requests)


async def test_a_rule_written_in_another_spelling_still_matches(tmp_path: Path) -> None:
    """R157: with the arguments made canonical, a rule written by hand as `./notes/*` or
    `https://bücher.example/*` (or an "always" rule written before) matched nothing."""
    from agent.tools.web import web_fetch
    from agent.tools.workspace import read_file

    path = tmp_path / "policy.toml"
    path.write_text(
        '[[rules]]\ntool = "web_fetch"\nargs = { url = "https://bücher.example/*" }\n'
        'decision = "deny"\n'
        '[[rules]]\ntool = "read_file"\nargs = { path = "./private/*" }\ndecision = "deny"\n'
    )
    engine = PolicyEngine(load_policy(path), owner_chats=None)  # type: ignore[arg-type]
    fetch, read = engine.policy.rules
    ctx: Any = None  # neither rule asks who or where
    assert await engine._matches(
        fetch, web_fetch, web_fetch.validate({"url": "https://BÜCHER.example/l"}), ctx
    )
    assert await engine._matches(
        read, read_file, read_file.validate({"path": "private/diary.md"}), ctx
    )
    assert not await engine._matches(read, read_file, read_file.validate({"path": "notes/x"}), ctx)


async def test_through_a_link_the_first_rule_for_the_file_reached_decides(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R158: with `allow private/shopping.md` before `deny private/*`, a link to the shopping
    list was refused as if the folder's rule came first. Each name a call reaches is decided by
    its own first rule, and the strictest of those verdicts holds."""
    import os

    fake_model.on_request(obedient_model)
    rules = [("private/shopping.md", "allow"), ("private/*", "deny")]
    (tmp_path / "policy.toml").write_text(
        "".join(
            f'[[rules]]\ntool = "read_file"\nargs = {{ path = "{p}" }}\ndecision = "{d}"\n'
            for p, d in rules
        )
        + DEFAULT_POLICY
    )
    private = tmp_path / "workspace" / "private"
    private.mkdir(parents=True)
    (private / "shopping.md").write_text("oat milk\n")
    os.symlink("private/shopping.md", tmp_path / "workspace" / "shopping.md")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(instruction("read_file", {"path": "shopping.md"}))
    assert "oat milk" in str(fake_model.requests[-1].tool_results)


async def test_a_rule_on_a_sites_folder_holds_for_an_escaped_slash(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R158: `/secret%2fx` and `/public/%2e%2e%2fsecret/x` passed a deny rule on `/secret/*`,
    and a server that decodes `%2F` (Python's http.server, nginx, WSGI) served the secret."""
    fake_model.on_request(obedient_model)
    (tmp_path / "policy.toml").write_text(
        '[[rules]]\ntool = "web_fetch"\nargs = { url = "https://site.example/secret/*" }\n'
        'decision = "deny"\n' + DEFAULT_POLICY
    )
    spellings = (
        "https://site.example/secret%2fx",
        "https://site.example/public/%2e%2e%2fsecret/x",
        "https://site.example/public%5c..%5csecret/x",
        # R160: slashes in a row, which nginx, Apache and http.server merge
        "https://site.example//secret/x",
        "https://site.example/%2Fsecret/x",
        "https://site.example/public/..%2F%2Fsecret/x",
        # segment parameters, which Tomcat and Jetty drop before routing
        "https://site.example/public/..;/secret/x",
        "https://site.example/secret;v=1/x",
    )
    async with running_steward(tmp_path, fake_model.base_url) as h:
        for n, url in enumerate(spellings):
            await h.say(instruction("web_fetch", {"url": url}), chat=f"u{n}")
            results = str(fake_model.requests[-1].tool_results)
            assert "refused: policy rule" in results and "secret/x" in results, results


async def test_always_on_a_card_an_ask_rule_raised_applies_from_then_on(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R160: "always" on a card raised by the owner's own `ask` rule was written after that
    rule, which, matching first, asked again every time (and each "always" wrote the rule
    again); through a link, the file reached asked too. From then on it runs unasked."""
    import os

    fake_model.on_request(obedient_model)
    (tmp_path / "policy.toml").write_text(
        '[[rules]]\ntool = "read_file"\nargs = { path = "private/*" }\ndecision = "ask"\n'
        + DEFAULT_POLICY
    )
    private = tmp_path / "workspace" / "private"
    private.mkdir(parents=True)
    (private / "shopping.md").write_text("oat milk\n")
    (private / "todo.md").write_text("call the plumber\n")
    os.symlink("private/shopping.md", tmp_path / "workspace" / "shopping.md")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        for n, path in enumerate(("private/todo.md", "shopping.md")):
            await h.say(instruction("read_file", {"path": path}), chat=f"a{n}")
            (_, card) = h.channel.approvals[-1]
            assert "Added to the policy file" in await h.say(f"/approve {card.approval_id} always")
            asked = len(h.channel.approvals)
            await h.say(instruction("read_file", {"path": path}), chat=f"b{n}")
            assert len(h.channel.approvals) == asked, f"{path} asked again"
        await h.say(instruction("read_file", {"path": "private/other.md"}), chat="c")
        assert len(h.channel.approvals) == 3, "the rule still asks for what no 'always' named"
    written = (tmp_path / "policy.toml").read_text()
    assert written.count('"path" = "private/todo.md"') == 1
    assert written.count('"path" = "shopping.md"') == 1
    assert written.count('"path" = "private/shopping.md"') == 1


async def test_always_never_jumps_a_deny_and_a_shell_always_applies(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R163: an "always" rule, winning over the ask rule whose card it answered, also jumped a
    deny the owner wrote between them later; and a shell "always" (an argv rule, not marked
    exact) never won over its ask rule, so every "always" wrote it again."""
    fake_model.on_request(obedient_model)
    private = tmp_path / "workspace" / "private"
    private.mkdir(parents=True)
    (private / "diary.md").write_text("dear diary\n")
    (tmp_path / "policy.toml").write_text(
        '[[rules]]\ntool = "read_file"\nargs = { path = "private/*" }\ndecision = "ask"\n'
        '[[rules]]\ntool = "shell"\nargv = "echo *"\ndecision = "ask"\n' + DEFAULT_POLICY
    )
    async with running_steward(tmp_path, fake_model.base_url) as h:
        for n, (tool, arguments) in enumerate(
            (("read_file", {"path": "private/diary.md"}), ("shell", {"command": "echo hello"}))
        ):
            await h.say(instruction(tool, arguments), chat=f"a{n}")
            (_, card) = h.channel.approvals[-1]
            assert "Added to the policy file" in await h.say(f"/approve {card.approval_id} always")
        await h.say(instruction("shell", {"command": "echo hello"}), chat="b")
        assert len(h.channel.approvals) == 2, "the shell command asked again"
    text = (tmp_path / "policy.toml").read_text()
    assert text.count('argv = "echo hello"') == 1
    (tmp_path / "policy.toml").write_text(  # the owner denies the diary, under the ask rule
        text.replace(
            'decision = "ask"\n',
            'decision = "ask"\n[[rules]]\ntool = "read_file"\n'
            'args = { path = "private/diary.md" }\ndecision = "deny"\n',
            1,
        )
    )
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(instruction("read_file", {"path": "private/diary.md"}), chat="c")
        asked = len(h.channel.approvals)  # the first rule that matches asks; the deny keeps
    assert asked == 1  # the "always" rule below it from deciding (R164: not the deny either)
    assert not any("dear diary" in str(r.tool_results) for r in fake_model.requests[-2:])


async def test_a_later_deny_or_a_hand_written_rule_never_overrides_the_first_ask(
    tmp_path: Path,
) -> None:
    """R164: with "always" winning over the ask rule it answered, any deny after an ask rule
    decided the call (an ask for one tool, then a deny for the rest of its server, always
    refused), and a narrow allow written by hand long ago jumped an ask rule put above it."""
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[rules]]\ntool = "shell"\nargv = "rm -i *"\ndecision = "ask"\n'
        '[[rules]]\ntool = "shell"\nargv = "rm *"\ndecision = "deny"\n'
        '[[rules]]\ntool = "shell"\nargv = "cp *"\ndecision = "ask"\n'
        '[[rules]]\ntool = "shell"\nargv = "cp a b"\ndecision = "allow"\n'
    )
    engine = PolicyEngine(load_policy(path), owner_chats=None)  # type: ignore[arg-type]
    from agent.tools.shell import shell

    ctx: Any = _Nobody()
    for command, decided in (("rm -i notes.txt", "ask"), ("cp a b", "ask"), ("rm x", "deny")):
        rule, _ = await engine._match(shell, {"command": command, "network": False}, ctx)
        assert rule is not None and rule.decision == decided, (command, rule)


class _Nobody:
    """A context whose person has no section of their own in the policy file."""

    class stores:
        class people:
            @staticmethod
            async def identities_of(user_id: int) -> list[str]:
                return []

    class user:
        id = 0


async def test_only_a_rule_for_one_call_jumps_an_ask(tmp_path: Path) -> None:
    """R165: `exact = true` written by hand on `argv = "git *"` (a wildcard) jumped the ask rule
    above it; on an MCP tool's `argv` rule, it let any extra argument through."""
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[rules]]\ntool = "shell"\nargv = "git push *"\ndecision = "ask"\n'
        '[[rules]]\ntool = "shell"\nargv = "git *"\nexact = true\ndecision = "allow"\n'
        '[[rules]]\ntool = "mcp__srv__*"\ndecision = "ask"\n'
        '[[rules]]\ntool = "mcp__srv__run"\nargv = "ls"\nexact = true\ndecision = "allow"\n'
    )
    engine = PolicyEngine(load_policy(path), owner_chats=None)  # type: ignore[arg-type]
    from agent.tools.shell import shell

    ctx: Any = _Nobody()
    pushed, _ = await engine._match(shell, {"command": "git push -f origin main"}, ctx)
    assert pushed is not None and pushed.decision == "ask", pushed

    class Run:
        name = "mcp__srv__run"

    extra = {"command": "ls", "host": "prod", "sudo": True}
    ran, _ = await engine._match(Run(), extra, ctx)  # type: ignore[arg-type]
    assert ran is not None and ran.decision == "ask", ran


async def test_a_glob_marked_exact_never_jumps_an_ask_and_an_exact_argv_rule_matches(
    tmp_path: Path,
) -> None:
    """R166: `exact = true` written by hand on `args = { path = "*" }` or `tool = "mcp__*"`
    jumped the ask rule above it; and an exact argv rule on an MCP tool matched no call (its
    own `command` counted as an argument beyond it), so an exact deny stopped denying."""
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[rules]]\ntool = "read_file"\nargs = { path = "private/*" }\ndecision = "ask"\n'
        '[[rules]]\ntool = "read_file"\nargs = { path = "*" }\nexact = true\ndecision = "allow"\n'
        '[[rules]]\ntool = "mcp__bank__transfer_all"\ndecision = "ask"\n'
        '[[rules]]\ntool = "mcp__*"\nexact = true\ndecision = "allow"\n'
        '[[rules]]\ntool = "mcp__srv__run"\nargv = "rm *"\nexact = true\ndecision = "deny"\n'
        '[[rules]]\ntool = "mcp__srv__*"\ndecision = "allow"\n'
    )
    engine = PolicyEngine(load_policy(path), owner_chats=None)  # type: ignore[arg-type]
    from agent.tools.workspace import read_file

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    ctx: Any = _Nobody()
    for tool, arguments, decided in (
        (read_file, {"path": "private/diary.md"}, "ask"),
        (Named("mcp__bank__transfer_all"), {}, "ask"),
        (Named("mcp__srv__run"), {"command": "rm -rf /"}, "deny"),
    ):
        rule, _ = await engine._match(tool, arguments, ctx)  # type: ignore[arg-type]
        assert rule is not None and rule.decision == decided, (arguments, rule)
