"""R230: what "allow always" writes. A rule for a link's target is for the target the card
named, never for where the link leads once the call has run; a call that failed writes no
rule; and "always" decisions at once each get their rule, as reported."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic
from harness import running_steward
from test_r230_redirects import CAUTIOUS
from trust_world import instruction, obedient_model, trust_world

from agent.policy import DEFAULT_POLICY, PolicyEngine, load_policy

ASK_PRIVATE = '[[rules]]\ntool = "read_file"\nargs = { path = "private/*" }\ndecision = "ask"\n'


def _retarget_once_read(
    target: Path, link: Path, new: str, real: Callable[..., Any]
) -> Callable[..., Any]:
    """`os.fdopen` as another process sees it: once `target` is open for reading, that
    process makes `link` lead to `new` (a sync client, a command of another turn)."""
    done: list[bool] = []

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real(fd, *args, **kwargs)
        with_path = os.readlink(f"/proc/self/fd/{fd}") if not done else ""
        if with_path == str(target.resolve()):
            done.append(True)
            os.unlink(link)
            os.symlink(new, link)
        return handle

    return fdopen


async def test_always_writes_no_rule_for_where_a_link_leads_after_the_run(
    tmp_path: Path, fake_model: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R230: the rule for the file a link led to was looked up again after the read, so a
    link retargeted in between got an exact allow rule for a file the card never named (the
    diary), which then ran unasked past the owner's own ask rule."""
    fake_model.on_request(obedient_model)
    (tmp_path / "policy.toml").write_text(ASK_PRIVATE + DEFAULT_POLICY)
    ws = tmp_path / "workspace"
    (ws / "private").mkdir(parents=True)
    (ws / "private" / "shopping.md").write_text("oat milk\n")
    (ws / "private" / "diary.md").write_text("dear diary\n")
    os.symlink("private/shopping.md", ws / "shopping.md")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(instruction("read_file", {"path": "shopping.md"}), chat="a")
        (_, card) = h.channel.approvals[-1]
        assert "the file read is private/shopping.md" in card.preview, card.preview
        hook = _retarget_once_read(
            ws / "private" / "shopping.md", ws / "shopping.md", "private/diary.md", os.fdopen
        )
        monkeypatch.setattr(os, "fdopen", hook)
        said = await h.say(f"/approve {card.approval_id} always")
        monkeypatch.undo()
        assert "read_file ran" in said, said
        assert "No rule was added for path=private/diary.md" in said, said
        asked = len(h.channel.approvals)
        await h.say(instruction("read_file", {"path": "private/diary.md"}), chat="b")
        assert len(h.channel.approvals) == asked + 1, "the diary was read unasked"
    written = (tmp_path / "policy.toml").read_text()
    assert '"path" = "private/diary.md"' not in written, written
    assert '"path" = "shopping.md"' in written, written  # the link itself, as approved


async def test_always_on_a_call_steward_refused_writes_no_rule(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R230: an approved call Steward refused as it ran (here: the file had gained a second
    hard link since the card, which may be `.env` under another name) is reported as run, and
    "always" still wrote its rules. A call that ran and failed keeps its rule: the owner said
    always to the call the card showed."""
    fake_model.on_request(obedient_model)
    (tmp_path / "policy.toml").write_text(ASK_PRIVATE + DEFAULT_POLICY)
    private = tmp_path / "workspace" / "private"
    private.mkdir(parents=True)
    (private / "notes.md").write_text("call Bob\n")
    (private / "gone.md").write_text("soon gone\n")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(instruction("read_file", {"path": "private/notes.md"}), chat="a")
        (_, card) = h.channel.approvals[-1]
        os.link(private / "notes.md", tmp_path / "workspace" / "twin.md")
        said = await h.say(f"/approve {card.approval_id} always")
        assert "read_file failed" in said, said
        assert "no rule was added (the call was refused)" in said, said
        await h.say(instruction("read_file", {"path": "private/gone.md"}), chat="b")
        (_, card) = h.channel.approvals[-1]
        (private / "gone.md").unlink()
        said = await h.say(f"/approve {card.approval_id} always")
    assert "read_file failed" in said and "Added to the policy file" in said, said
    written = (tmp_path / "policy.toml").read_text()
    assert '"path" = "private/notes.md"' not in written, written
    assert '"path" = "private/gone.md"' in written, written


async def test_always_decisions_at_once_each_get_their_rule(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R230: four "always" decisions at once (chats, the web console) each read the file,
    appended and replaced it through one shared temporary name: rules reported added were
    lost, and others were told no rule was added."""
    fake_model.on_request(obedient_model)
    (tmp_path / "policy.toml").write_text(ASK_PRIVATE + DEFAULT_POLICY)
    private = tmp_path / "workspace" / "private"
    private.mkdir(parents=True)
    names = [f"n{i}.md" for i in range(4)]
    for name in names:
        (private / name).write_text("x\n")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        for i, name in enumerate(names):
            await h.say(instruction("read_file", {"path": f"private/{name}"}), chat=f"c{i}")
        cards = [card for _, card in h.channel.approvals]
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        ident = (await h.steward.stores.people.identities_of(owner.id))[0]
        said = await asyncio.gather(
            *(
                h.steward.decide_approval(
                    c.approval_id, identity=ident, user=owner, approve=True, always=True
                )
                for c in cards
            )
        )
    written = (tmp_path / "policy.toml").read_text()
    assert all("Added to the policy file" in s for s in said), said
    assert all(f'"path" = "private/{n}"' in written for n in names), written


def test_rules_added_from_threads_at_once_are_all_kept(tmp_path: Path) -> None:
    """R230: `add_rule_for` runs in worker threads; without a lock two at once lost a rule
    (or one failed on the other's temporary file)."""
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY)
    engine = PolicyEngine(load_policy(path), owner_chats=None, path=path)  # type: ignore[arg-type]
    start = threading.Barrier(8)
    failed: list[BaseException] = []

    def add(n: int) -> None:
        start.wait()
        for round_ in range(10):
            try:
                engine.add_rule_for("web_fetch", {"url": f"https://h{n}-{round_}.example/"})
            except Exception as exc:  # counted below
                failed.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = path.read_text()
    assert not failed, failed
    missing = [
        (n, r) for n in range(8) for r in range(10) if f"https://h{n}-{r}.example/" not in written
    ]
    assert not missing, missing
    assert len(load_policy(path).rules) == len(engine.policy.rules)
    assert not list(tmp_path.glob(".policy.toml.*"))  # no temporary file left behind


async def test_a_path_holding_the_targets_words_does_not_count_as_the_card_naming_it(
    tmp_path: Path, fake_model: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R234: a link whose own path held " private/diary.md)" had `_on_card` take the diary as
    named on the card; retargeted after the run, "always" wrote an allow rule for the diary."""
    fake_model.on_request(obedient_model)
    (tmp_path / "policy.toml").write_text(ASK_PRIVATE + DEFAULT_POLICY)
    ws = tmp_path / "workspace"
    (ws / "private").mkdir(parents=True)
    (ws / "private" / "shopping.md").write_text("oat milk\n")
    (ws / "private" / "diary.md").write_text("dear diary\n")
    (ws / "x private").mkdir()
    link = ws / "x private" / "diary.md)"
    os.symlink("../private/shopping.md", link)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(instruction("read_file", {"path": "x private/diary.md)"}), chat="a")
        (_, card) = h.channel.approvals[-1]
        assert "the file read is private/shopping.md" in card.preview, card.preview
        hook = _retarget_once_read(
            ws / "private" / "shopping.md", link, "../private/diary.md", os.fdopen
        )
        monkeypatch.setattr(os, "fdopen", hook)
        said = await h.say(f"/approve {card.approval_id} always")
        monkeypatch.undo()
        assert "read_file ran" in said, said
    written = (tmp_path / "policy.toml").read_text()
    assert '"path" = "private/diary.md"' not in written, (said, written)


async def test_always_on_a_fetch_refused_at_a_redirect_writes_no_rule(tmp_path: Path) -> None:
    """R234: an approved fetch refused at its redirect (a deny rule) is stored fenced as the
    page's source, so "never a rule from a call Steward refused" missed it."""
    async with trust_world(tmp_path) as w:
        base = w.web.base_url
        w.web.pages["/secret/x"] = "<p>TRACKED-SECRET-PAGE</p>"
        w.web.redirects["/go"] = f"{base}/secret/x"
        path = w.data_dir / "policy.toml"
        path.write_text(
            f'[[rules]]\ntool = "web_fetch"\nargs = {{ url = "{base}/secret/*" }}\n'
            'decision = "deny"\n' + CAUTIOUS
        )
        assert w.h.steward.policy is not None
        w.h.steward.policy.policy = load_policy(path)
        await w.h.say(instruction("web_fetch", {"url": f"{base}/go"}), chat="a")
        (_, card) = w.h.channel.approvals[-1]
        said = await w.h.say(f"/approve {card.approval_id} always")
        row = await w.h.steward.stores.approvals.get(card.approval_id)
    assert "web_fetch failed" in said, said
    assert "TRACKED-SECRET-PAGE" not in (row.result or "")
    assert "no rule was added (the call was refused)" in said, (said, row.result[:300])
