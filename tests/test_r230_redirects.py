"""R230: web_fetch followed up to five redirects, each checked for a public address but never
against the policy: an allowed (or "always" allowed) URL that redirected into a denied one
was fetched. Each hop is now decided as the first address is: a deny stops, and so does an
ask, naming where it leads."""

from __future__ import annotations

from pathlib import Path

from trust_world import instruction, trust_world

from agent.policy import DEFAULT_POLICY, load_policy

CAUTIOUS = DEFAULT_POLICY.replace(
    'tool = "web_fetch"\ndecision = "allow"', 'tool = "web_fetch"\ndecision = "ask"'
)


async def test_a_redirect_into_a_denied_address_is_not_followed(tmp_path: Path) -> None:
    """R230: the default `web_fetch → allow` with a deny for one site: a page that redirects
    there was followed, and the denied page reached the model."""
    async with trust_world(tmp_path) as w:
        base = w.web.base_url
        w.web.pages["/secret/x"] = "<p>TRACKED-SECRET-PAGE</p>"
        w.web.redirects["/go"] = f"{base}/secret/x"
        path = w.data_dir / "policy.toml"
        path.write_text(
            f'[[rules]]\ntool = "web_fetch"\nargs = {{ url = "{base}/secret/*" }}\n'
            'decision = "deny"\n' + DEFAULT_POLICY
        )
        assert w.h.steward.policy is not None
        w.h.steward.policy.policy = load_policy(path)
        await w.h.say(instruction("web_fetch", {"url": f"{base}/go"}), chat="a")
        told = str(w.model.requests[-1].tool_results)
    assert w.web.requests == ["/go"], w.web.requests
    assert "TRACKED-SECRET-PAGE" not in told
    assert f"redirects to {base}/secret/x, which the policy forbids" in told, told


async def test_an_always_rule_does_not_stretch_through_a_redirect(tmp_path: Path) -> None:
    """R230: a cautious owner (`web_fetch → ask`) approved "always" for one URL; whatever it
    redirected to later was fetched unasked, even an address their deny rule named. A hop the
    owner would be asked about is not followed either: the model is told where it leads."""
    async with trust_world(tmp_path) as w:
        base = w.web.base_url
        w.web.pages["/secret/x"] = "<p>TRACKED-SECRET-PAGE</p>"
        w.web.pages["/public"] = "<p>public page</p>"
        w.web.pages["/go"] = "<p>the page itself</p>"
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
        assert "Added to the policy file" in said, said
        # later the server sends /go elsewhere: the rule is for /go alone
        for chat, where in (("b", "/secret/x"), ("c", "/public")):
            w.web.redirects["/go"] = f"{base}{where}"
            asked = len(w.h.channel.approvals)
            await w.h.say(instruction("web_fetch", {"url": f"{base}/go"}), chat=chat)
            assert len(w.h.channel.approvals) == asked  # /go itself is allowed now
        told = [str(r.tool_results) for r in w.model.requests]
    assert w.web.requests == ["/go", "/go", "/go"], w.web.requests
    assert any(f"redirects to {base}/secret/x, which the policy forbids" in t for t in told)
    assert any(
        f"redirects to {base}/public, which the owner is asked about first" in t for t in told
    )
    assert not any("TRACKED-SECRET-PAGE" in t for t in told)
