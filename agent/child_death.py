"""A command dies with Steward: without this, one Steward was killed in the middle of (SIGKILL,
the OOM killer, a crash) ran on with no time limit, beside the restarted Steward (review 116:
an approved `sleep 3600` was alive long after; SIGTERM cannot reach it, it is the first
process of its namespace). Between fork and exec the child asks the kernel for SIGKILL when its
parent dies (`prctl(PR_SET_PDEATHSIG)`); `unshare --kill-child` passes it on to the namespace.
A parent already gone by then (the race the man page names) stops the child at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

__all__ = ["dies_with_parent"]

_PR_SET_PDEATHSIG = 1

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux's libc: nothing to ask for
    _prctl = None


def dies_with_parent(then: Callable[[], None] | None = None) -> Callable[[], None] | None:
    """A `preexec_fn` that ties the child's life to this process, then runs `then` (another
    preexec step, e.g. `keyrings.fresh_keyring`). Made in the parent, just before the fork."""
    if _prctl is None:
        return then
    prctl, parent = _prctl, os.getpid()
    kill = ctypes.c_ulong(signal.SIGKILL)
    option = ctypes.c_int(_PR_SET_PDEATHSIG)

    def run() -> None:  # in the child: nothing here may take a lock another thread held
        if prctl(option, kill) != 0 or os.getppid() != parent:
            os._exit(1)  # not tied, or the parent is already gone: never run on alone
        if then is not None:
            then()

    return run
