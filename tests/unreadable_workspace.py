"""A shell request over a workspace holding something Steward cannot read.

Run by `test_sandbox_edges` in a process that cannot read a mode-000 file, as Steward runs as a
service user (as root, the test takes CAP_DAC_OVERRIDE away with setpriv). Commands own their
files and may chmod them 000; the digest an approval is bound to cannot see inside such a file,
so it could be edited after the approval and still run under it. The request is refused instead.
"""

from __future__ import annotations

import asyncio
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
        for locked, name in ((steps, "lib/steps.sh"), (lib, "lib")):
            locked.chmod(0)
            try:
                await w.h.say(instruction("shell", {"command": "sh run.sh"}))
            finally:
                locked.chmod(0o700)
            assert w.h.channel.approvals == [], "asked for an approval it could not pin"
            result = w.model.requests[-1].tool_results[-1]["content"]
            assert f"cannot read {name} in the workspace" in result, result
        assert await w.tools_ran("shell") == 0
        await w.check_invariants()
    print("refused, never asked")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(Path(folder)))
