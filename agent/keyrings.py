"""A command's own kernel keyring: it never shares Steward's (review 75).

A child process inherits its parent's session keyring: a confined command could read keys kept
there (for `make run` in a login shell, the user's login keyring: Kerberos caches, fscrypt
keys) and leave keys of its own behind for later commands, outside the workspace an approval
is bound to. No namespace separates keyrings, and `unshare` and `setpriv` have no option for
it, so the child joins a new, empty, anonymous session keyring between fork and exec
(`keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`), from a function resolved before the fork; if
that fails the command does not start. The price: with a `preexec_fn` CPython forks instead of
vforking, ~15 ms of the event loop a command in a 600 MB process (review 77), for commands
an owner approved or a rule allowed, which are rare next to turns.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable

__all__ = ["fresh_keyring"]

_SYS_KEYCTL = {"x86_64": 250, "amd64": 250, "aarch64": 219, "arm64": 219, "riscv64": 219}.get(
    platform.machine().lower()
)
_JOIN_SESSION_KEYRING = 1


def _joiner() -> Callable[[], None] | None:
    if _SYS_KEYCTL is None:
        return None
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    number = ctypes.c_long(_SYS_KEYCTL)
    join = ctypes.c_long(_JOIN_SESSION_KEYRING)

    def run() -> None:  # in the child: nothing here may take a lock another thread held
        if syscall(number, join, None) < 0:  # fail closed: the command does not start
            raise OSError("could not give the command a keyring of its own")

    return run


fresh_keyring = _joiner()
"""A `preexec_fn` giving the child a keyring of its own (None on an architecture not known
here: the command then shares Steward's, as before)."""
