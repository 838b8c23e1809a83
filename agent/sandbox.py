"""Where tools that touch the world may reach: one workspace directory, and public web hosts.

Paths are confined to the workspace: absolute paths, `~`, `..`, encoded dots and NUL bytes are
refused before anything is resolved, and a path whose resolution (symlinks followed) leaves the
workspace is refused too. Web addresses are checked by `agent.public_web`.

Commands run in a fresh root built inside a user, mount, pid and IPC namespace (util-linux
`unshare`, `pivot_root`, `setpriv`): the system directories read-only (of /etc only its public
files), the kernel's settings read-only, the workspace read-write at its own path and nothing
else of the machine (not the data directory with the database, the policy and the audit key,
not Steward's working directory with `.env`, not other programs' System V shared memory), no
network unless the call asks, no capabilities, and every process gone when the command ends.
Where namespaces are missing the shell is off unless the owner opts in
(`STEWARD_SHELL_UNCONFINED`).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.errors import ToolError
from agent.git_pins import git_pins
from agent.tree_digest import workspace_digest

__all__ = ["Sandbox", "os_sandbox_available", "shell_mode"]

log = logging.getLogger(__name__)

_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)

SHELL_OFF = (
    "shell is off: this machine has no user namespaces, so commands could not be confined; "
    "set STEWARD_SHELL_UNCONFINED=true to run them unconfined"
)
# Inside the namespace: only system binaries, and a HOME that is empty and read-only.
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_INNER_HOME = "/sandbox-home"

# What of /etc a command sees: names, addresses, certificates, the loader's cache, time zone,
# the alternatives symlinks. Never the whole of it: /etc holds secrets readable by Steward's
# user or group (the systemd unit's EnvironmentFile, /etc/shadow when running as root).
_ETC_KEPT = (
    "passwd group hosts host.conf hostname resolv.conf nsswitch.conf gai.conf protocols "
    "services networks mime.types localtime timezone os-release lsb-release debian_version "
    "ld.so.cache ld.so.conf ld.so.conf.d alternatives ssl/certs ssl/openssl.cnf "
    "ca-certificates ca-certificates.conf pki/tls/certs pki/ca-trust/extracted "
    "crypto-policies python3 magic magic.mime locale.alias"
)

# What of /proc a command may not read (kernel addresses, keys, hardware): masked, as container
# runtimes do. The whole of /proc is mounted read-only: when Steward runs as root, the
# namespace's root is the machine's, and root-owned files there (IRQ affinity, PCI config space,
# kernel settings) would take its writes.
_PROC_MASKED_FILES = (
    "kcore keys kallsyms latency_stats timer_list timer_stats sched_debug vmallocinfo slabinfo "
    "kpagecount kpageflags kpagecgroup sysrq-trigger"
)
_PROC_MASKED_DIRS = "acpi scsi asound irq bus"

# Runs as root of a new user namespace, in new mount and pid namespaces. Builds a root on a
# tmpfs: read-only binds of the system directories and of the parts of /etc above, a few device
# nodes, a fresh /proc (read-only, parts masked), a private /tmp, the workspace read-write;
# pivots into it, drops the old root and every capability, and becomes the command (pid 1: when
# it ends the kernel kills whatever it left behind).
OTHERS_FILES = "inbox"
"""Where files other people send land in the workspace (agent.media.intake.INBOX)."""

# What one confined command may take, whatever it was approved as: a file of at most
# FILE_BYTES (the disk also holds steward.db: a message is stored before any work), at most
# PROCESSES processes (a fork bomb; counted within the command's own user namespace, so not
# when Steward runs as the machine's root, which the kernel exempts), and private writable
# memory of at most DATA_BYTES a process (half the machine; RLIMIT_DATA, not the address space,
# which runtimes reserve far beyond what they use). Its processes are the first the kernel's
# OOM killer takes (oom_score_adj 1000), never Steward. The timeout ends the rest.
FILE_BYTES = 4 * 2**30
PROCESSES = 1024
DATA_BYTES = max(2**30, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)

_CONFINE = f"""\
set -eu
ws="$1"; root="$2"; home="$3"; top="$4"; ws_seen="$5"; root_seen="$6"; hidden="$7"
top_seen="$8"; shift 8
echo 1000 > /proc/self/oom_score_adj
mount -t tmpfs -o mode=0755,size=1m steward-root "$root"
for d in usr bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then mkdir "$root/$d"; mount --rbind "/$d" "$root/$d"; fi
done
mkdir "$root/etc"
for f in {_ETC_KEPT}; do
  s="/etc/$f"; t="$root/etc/$f"
  if [ -L "$s" ]; then mkdir -p "${{t%/*}}"; ln -s "$(readlink "$s")" "$t"
  elif [ -d "$s" ]; then mkdir -p "$t"; mount --rbind "$s" "$t"
  elif [ -f "$s" ]; then mkdir -p "${{t%/*}}"; touch "$t"; mount --bind "$s" "$t"; fi
done
mkdir "$root/dev" "$root/proc" "$root/tmp"
for n in null zero full random urandom; do
  touch "$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"
done
ln -s /proc/self/fd "$root/dev/fd"; ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"
if mount -t proc -o ro,nosuid,nodev,noexec proc "$root/proc" 2>/dev/null; then
  for p in {_PROC_MASKED_FILES}; do
    if [ -f "$root/proc/$p" ]; then mount --bind /dev/null "$root/proc/$p"; fi
  done
  for d in {_PROC_MASKED_DIRS}; do
    if [ -d "$root/proc/$d" ]; then mount -t tmpfs -o ro,mode=0555,size=4k none "$root/proc/$d"; fi
  done
fi
mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev steward-tmp "$root/tmp"
mkdir -p "$root$home" "$root$ws"
if [ -n "$top" ]; then
  mount --bind "$root$top" "$root$top"; mount -o remount,bind,ro "$root$top"
fi
cut -d' ' -f5 /proc/self/mountinfo | while read -r m; do
  case "$m" in
    "$root_seen"/tmp|"$root_seen"/proc|"$root_seen"/dev/*) ;;
    "$root_seen$top_seen") ;;
    "$root_seen"/*) case "$m" in *\\\\*) exit 97 ;; esac; mount -o remount,bind,ro "$m" ;;
  esac
done
mount --bind "$ws" "$root$ws"
grep -qF " $ws_seen rw," /proc/self/mountinfo
if [ -n "$hidden" ] && [ -d "$root$ws/$hidden" ] && [ ! -L "$root$ws/$hidden" ]; then
  mount -t tmpfs -o ro,mode=0555,size=4k steward-hidden "$root$ws/$hidden"
fi
mount -o remount,bind,ro "$root"
cd "$root"
pivot_root . .
umount -l .
cd "$ws"
exec prlimit --fsize={FILE_BYTES} --nproc={PROCESSES} --data={DATA_BYTES} \\
  setpriv --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"
"""


@functools.cache
def _empty_dir() -> str:
    """An empty, read-only directory: HOME for unconfined commands, and the mount point on which
    the namespace builds its root (a private mount there leaves the directory itself empty)."""
    path = tempfile.mkdtemp(prefix="steward-sandbox-")
    os.chmod(path, 0o555)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _seen(path: str) -> str:
    """A path as /proc/self/mountinfo spells it."""
    for char, code in (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011"), ("\n", "\\012")):
        path = path.replace(char, code)
    return path


def _confined(
    unshare: str, workspace: str, argv: list[str], network: bool, hidden: str = ""
) -> list[str]:
    top = ""
    parts = PurePosixPath(workspace).parts
    if len(parts) > 3 and parts[1] == "tmp":  # the private /tmp is writable: keep its parents not
        top = f"/tmp/{parts[2]}"
    root = _empty_dir()
    return [
        unshare,
        "--user",
        "--map-root-user",
        "--mount",
        "--pid",
        "--ipc",  # System V shared memory of its own, gone with its last process (review 68)
        "--fork",
        "--kill-child",
        *([] if network else ["--net"]),
        "--",
        "/bin/sh",
        "-c",
        _CONFINE,
        "steward-sandbox",
        workspace,
        root,
        _INNER_HOME,
        top,
        _seen(root + workspace),
        _seen(root),
        hidden,
        _seen(top) if top else "-",  # remounted read-only by its own name: may hold a space
        *argv,
    ]


@functools.cache
def _namespaces_work(unshare: str | None) -> bool:
    """Whether a command can be confined here: the whole setup, tried once per `unshare`."""
    ok = False
    if unshare is not None:
        # no writable temporary folder (R259: a read-only root) is no sandbox, not a crash
        with (
            contextlib.suppress(OSError, subprocess.TimeoutExpired),
            tempfile.TemporaryDirectory(prefix="steward-probe-") as workspace,
        ):
            probe = subprocess.run(
                _confined(unshare, os.path.realpath(workspace), ["true"], network=False),
                env={"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8"},
                capture_output=True,
                timeout=10,
            )
            ok = probe.returncode == 0
    if not ok:
        log.warning("%s (unless STEWARD_SHELL_UNCONFINED=true)", SHELL_OFF)
    return ok


def os_sandbox_available() -> bool:
    """Whether commands can run confined (user namespaces and util-linux). Blocking the first
    time (it tries the setup once): call it from a worker thread."""
    return _namespaces_work(shutil.which("unshare"))


def shell_mode(unconfined: bool) -> str:
    """The shell's confinement state in one line, for `/status`."""
    if os_sandbox_available():
        return "shell: confined (user namespaces)"
    if unconfined:
        return "shell: UNCONFINED (STEWARD_SHELL_UNCONFINED)"
    return "shell: off (no user namespaces)"


@dataclass(frozen=True)
class Sandbox:
    workspace: Path
    shell_timeout: float = 30.0
    output_limit: int = 20_000
    fetch_allow_hosts: frozenset[str] = frozenset()
    fetch_max_bytes: int = 2_000_000
    fetch_timeout: float = 15.0
    shell_unconfined: bool = False

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
        try:
            resolved = (root / relative).resolve()
        except RuntimeError:  # Python 3.11's word for a link loop (3.13 raises OSError)
            raise ToolError(f"refused: {path} is a link that leads to itself") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ToolError(f"refused: {path} is a link that leads to itself") from None
            if exc.errno in (errno.EINVAL, errno.ENOENT):
                # a link swapped for a folder or removed between realpath's lstat and readlink
                raise ToolError(
                    f"cannot use {path}: it changed while it was being looked at "
                    f"({exc.strerror}); try again"
                ) from None
            raise ToolError(f"cannot use {path}: {exc.strerror}") from None
        if resolved != root and root not in resolved.parents:
            raise ToolError(f"refused: {path} leads outside the workspace")
        return resolved

    def tree_digest(self, removed: tuple[str, ...] = ()) -> str:
        """The workspace's digest (agent.tree_digest), and apart from it that of `inbox/`
        (what people send arrives there at any time), as `<tree>:inbox:<empty|held>:<inbox>`
        (`<tree>:inbox:none` when there is no such folder); `removed`: folders the command
        deletes whole, their contents left out. Blocking: call it from a worker thread."""
        root, inbox = self.root(), self.root() / OTHERS_FILES
        if inbox.is_dir() and not inbox.is_symlink():
            held = "empty" if not os.listdir(inbox) else "held"
            tree = workspace_digest(root, OTHERS_FILES, removed)
            if OTHERS_FILES in removed:  # `rm -r inbox`: what is in it does not count either
                return f"{tree}:inbox:{held}:removed"
            inside = tuple(
                path.removeprefix(f"{OTHERS_FILES}/")
                for path in removed
                if path.startswith(f"{OTHERS_FILES}/")
            )
            shown = f"{OTHERS_FILES}/"
            return f"{tree}:inbox:{held}:{workspace_digest(inbox, removed=inside, shown=shown)}"
        # a link or a file there: in the tree
        return f"{workspace_digest(root, removed=removed)}:inbox:none"

    def confined(self) -> bool:
        """True to confine, False to run unconfined (the owner opted in); ToolError when the
        shell is off. Blocking the first time: call it from a worker thread."""
        if os_sandbox_available():
            return True
        if self.shell_unconfined:
            return False
        raise ToolError(SHELL_OFF)

    def command(
        self, argv: list[str], *, confined: bool, network: bool = False, unasked: bool = False
    ) -> list[str]:
        """The command line that runs `argv` in the namespace (or as it is, unconfined).
        `unasked`: it runs by a rule, not by the owner's approval of this very call, so what
        other people sent (`inbox/`) is hidden from it: a test runner allowed "always" found
        and ran a file someone dropped there."""
        if not confined:
            return argv
        unshare = shutil.which("unshare")
        if unshare is None:
            raise ToolError(SHELL_OFF)
        hidden = OTHERS_FILES if unasked else ""
        return _confined(unshare, str(self.root()), argv, network, hidden)

    def env(self, *, confined: bool, git: dict[str, str] | None = None) -> dict[str, str]:
        """The environment commands run with: no secrets, an empty read-only HOME, and no
        configuration the workspace could plant for git or a pager."""
        home = _INNER_HOME if confined else _empty_dir()
        return {
            "PATH": _SYSTEM_PATH if confined else os.environ.get("PATH", _SYSTEM_PATH),
            "HOME": home,
            "XDG_CONFIG_HOME": home,
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "GIT_EDITOR": "false",
            "GIT_SEQUENCE_EDITOR": "false",
            "GIT_ASKPASS": "false",
            "GIT_TERMINAL_PROMPT": "0",
            # set, even empty, git reads no `core.gitProxy` (the file's value would come first
            # of its list: a pin cannot outrank it, R105); empty, no proxy runs
            "GIT_PROXY_COMMAND": "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_SYSTEM": "/dev/null",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_CEILING_DIRECTORIES": str(self.root().parent),
            **(git if git is not None else git_pins([])),
        }
