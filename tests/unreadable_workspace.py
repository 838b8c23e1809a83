"""A shell request over a workspace holding something Steward cannot read.

Run by `test_sandbox_edges` in a process that cannot read a mode-000 file, as Steward runs as a
service user (as root, the test takes CAP_DAC_OVERRIDE away with setpriv). Commands own their
files and may chmod them 000 (or unpack an archive with such modes): the digest an approval is
bound to could not see inside, so such a file could be edited after the approval and still run
under it; refusing instead locked every later command out. Steward's own entries are made
readable again and hashed; one it does not own and cannot read is refused.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from trust_world import instruction, trust_world


async def main(tmp: Path) -> None:
    async with trust_world(tmp) as w:
        (w.workspace / "run.sh").write_text(". ./lib/steps.sh\nstep\n")
        lib = w.workspace / "lib"
        lib.mkdir()
        steps = lib / "steps.sh"
        steps.write_text("step() { echo step done; }\n")
        steps.chmod(0)
        lib.chmod(0)
        await w.h.say(instruction("shell", {"command": "sh run.sh"}))
        [(_, card)] = w.h.channel.approvals  # asked: no lockout
        assert steps.stat().st_mode & 0o400, "made readable to be hashed"
        # edited after the request, and made unreadable again: the approval no longer matches
        steps.chmod(0o600)
        steps.write_text("step() { touch pwned; }\n")
        steps.chmod(0)
        reply = await w.h.say(f"/approve {card.approval_id}")
        assert "no longer matches" in reply, reply
        assert not (w.workspace / "pwned").exists() and await w.tools_ran("shell") == 0
        linked = w.workspace / "a.txt"  # an unpacked archive's hard link, both names 000
        linked.write_text("a\n")
        os.link(linked, w.workspace / "b.txt")
        linked.chmod(0)
        await w.h.say(instruction("shell", {"command": "sh run.sh"}))
        assert len(w.h.channel.approvals) == 2, "a hard-linked unreadable file locked it out"
        w.workspace.chmod(0o300)  # the workspace folder itself, made unreadable
        await w.h.say(instruction("shell", {"command": "sh run.sh"}))
        assert len(w.h.channel.approvals) == 3, "the workspace folder locked the shell out"
        assert w.workspace.stat().st_mode & 0o500 == 0o500
        if os.geteuid() == 0:  # someone else's unreadable file cannot be pinned: refused
            foreign = w.workspace / "foreign.sh"
            foreign.write_text("echo hi\n")
            os.chown(foreign, 65534, 65534)
            foreign.chmod(0)
            await w.h.say(instruction("shell", {"command": "sh run.sh"}))
            assert len(w.h.channel.approvals) == 3, "asked for an approval it could not pin"
            result = w.model.requests[-1].tool_results[-1]["content"]
            assert "cannot read foreign.sh in the workspace" in result, result
            foreign.unlink()
        await w.check_invariants()
    print("pinned, never locked out")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(Path(folder)))
