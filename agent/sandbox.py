"""Where tools that touch the world may reach: one workspace directory, and public web hosts.

Paths are confined to the workspace: absolute paths, `~`, `..`, encoded dots and NUL bytes are
refused before anything is resolved, and a path whose resolution (symlinks followed) leaves the
workspace is refused too. Web addresses are checked after DNS resolution: loopback, private,
link-local and other non-public addresses are refused unless the host is allow-listed.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.tools.registry import ToolError

__all__ = ["Sandbox", "check_public_host", "os_sandbox_available"]

log = logging.getLogger(__name__)

_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)

# Runs inside a new user + mount namespace: the workspace stays writable, every other mount
# becomes read-only, then the command replaces the shell.
_CONFINE = """\
ws="$1"; shift
mount --bind "$ws" "$ws" || exit 97
cut -d' ' -f5 /proc/self/mountinfo | while read -r m; do
  [ "$m" = "$ws" ] || mount -o remount,bind,ro "$m" 2>/dev/null
done
cd "$ws" && exec "$@"
"""


@functools.cache
def os_sandbox_available() -> bool:
    """Whether unprivileged user namespaces work here (util-linux `unshare`)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        probe = subprocess.run(
            [unshare, "--user", "--map-root-user", "--mount", "true"],
            capture_output=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if probe.returncode != 0:
        log.warning(
            "shell commands run without an OS sandbox: user namespaces are not available "
            "(argument checks still keep paths inside the workspace)"
        )
    return probe.returncode == 0


@dataclass(frozen=True)
class Sandbox:
    workspace: Path
    shell_timeout: float = 30.0
    output_limit: int = 20_000
    fetch_allow_hosts: frozenset[str] = frozenset()
    fetch_max_bytes: int = 2_000_000
    fetch_timeout: float = 15.0

    def root(self) -> Path:
        self.workspace.mkdir(parents=True, exist_ok=True)
        return self.workspace.resolve()

    def check_relative(self, path: str) -> PurePosixPath:
        """Refuse any spelling of a path that could point outside before touching the disk."""
        if "\x00" in path:
            raise ToolError("refused: the path contains a NUL byte")
        if _ENCODED.search(path):
            raise ToolError("refused: the path contains URL-encoded separators or dots")
        if path.startswith("~"):
            raise ToolError("refused: paths are relative to the workspace; `~` is not allowed")
        pure = PurePosixPath(path.replace("\\", "/"))
        if pure.is_absolute() or re.match(r"^[A-Za-z]:", path):
            raise ToolError("refused: absolute paths are outside the workspace")
        if ".." in pure.parts:
            raise ToolError("refused: `..` would leave the workspace")
        return pure

    def resolve(self, path: str) -> Path:
        """The real path of `path` inside the workspace (symlinks followed), or ToolError."""
        relative = self.check_relative(path or ".")
        root = self.root()
        resolved = (root / relative).resolve()
        if resolved != root and root not in resolved.parents:
            raise ToolError(f"refused: {path} leads outside the workspace")
        return resolved

    def confine(self, argv: list[str]) -> list[str]:
        """The command line that runs `argv` with only the workspace writable, where the OS
        allows it (user namespaces); `argv` itself otherwise."""
        if not os_sandbox_available():
            return argv
        unshare = shutil.which("unshare") or "unshare"
        root = str(self.root())
        return [
            unshare,
            "--user",
            "--map-root-user",
            "--mount",
            "--",
            "/bin/sh",
            "-c",
            _CONFINE,
            "steward-sandbox",
            root,
            *argv,
        ]

    def env(self) -> dict[str, str]:
        """The environment commands run with: no secrets, nothing inherited but PATH."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root()),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
        }


async def check_public_host(host: str, port: int, allow: frozenset[str]) -> None:
    """Refuse a host that resolves to a loopback, private, link-local or reserved address."""
    if host.lower() in allow:
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"could not resolve {host}: {exc.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise ToolError(
                f"refused: {host} resolves to {address}, which is not a public address "
                "(STEWARD_FETCH_ALLOW_HOSTS can allow a host you trust)"
            )
