"""The process's open-files limit, raised to what the system allows it (review 79).

systemd and most shells give a soft limit of 1,024 descriptors. Steward's own use is ~100
(SQLite, Chroma's pool, HTTP clients, the workspace's subprocesses), but the HTTP server's
connections come on top of it: a few hundred held open by anyone who can reach the port left
none for the owner's next message. The hard limit is the ceiling the administrator set.
"""

from __future__ import annotations

import logging
import resource

__all__ = ["raise_open_files_limit"]

log = logging.getLogger(__name__)

UNLIMITED_TARGET = 1 << 20  # an unlimited hard limit: as high as Linux's default nr_open


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # a container's seccomp, or nr_open lower
            log.warning("could not raise the open-files limit from %d: %s", soft, exc)
            return soft
        return target
    return soft
