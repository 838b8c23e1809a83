"""Where Steward lives: one home directory, found once at start-up, and every relative path in
the settings resolved against it.

The home is, in this order:

1. `STEWARD_HOME`, when it is set (a relative value is taken from the current directory);
2. the source checkout Steward runs from (the folder with `pyproject.toml` above the `agent`
   package: what `make run` and `.venv/bin/steward` use), whatever the current directory;
3. the current directory (an installed wheel with no `STEWARD_HOME`, e.g. in a container).

`.env` is read from the home, and relative paths in the settings (`STEWARD_DATA_DIR=data`,
`STEWARD_EMBEDDER_DIR`, …) are joined to it, so `steward run` started from any folder opens the
same data. The environment always wins over `.env`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.config import Settings, data_dir_problem, load_settings
from agent.env_file import check_env_file, env_file_values, setting_names
from agent.errors import ConfigError

__all__ = [
    "LOCK_FILE",
    "LOG_FILE",
    "DataDirBusy",
    "DataDirLock",
    "Home",
    "find_home",
    "load_at_home",
    "resolve_paths",
]

LOCK_FILE = "steward.lock"
LOG_FILE = "steward.log"  # where the interactive console sends the log

_CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Home:
    """The directory relative paths and `.env` are taken from, and why it is that one."""

    dir: Path
    reason: str

    @property
    def env_file(self) -> Path:
        return self.dir / ".env"

    def describe(self) -> str:
        return f"{self.dir} ({self.reason})"


def _is_checkout(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "agent" / "paths.py").is_file()


def find_home(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    checkout: Path | None = _CHECKOUT,
) -> Home:
    """The home directory by the rule in this module's docstring; always absolute."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("STEWARD_HOME", "").strip()
    if explicit and Path(explicit).expanduser().is_absolute():
        return Home(Path(explicit).expanduser(), "STEWARD_HOME")
    if not explicit and checkout is not None and _is_checkout(checkout):
        return Home(checkout, "the source checkout")
    here = _current_dir(cwd)
    if explicit:
        return Home((here / Path(explicit).expanduser()).absolute(), "STEWARD_HOME")
    return Home(here, "the current directory")


def _current_dir(cwd: Path | None) -> Path:
    """The current directory, asked for only when the home depends on it: started in a folder
    since deleted, `os.getcwd()` raised a traceback (R186); now one line saying so."""
    try:
        return (cwd or Path.cwd()).absolute()
    except OSError as exc:
        raise ConfigError(
            f"the current directory cannot be used ({exc.strerror or exc}): cd to another, "
            "or set STEWARD_HOME to an absolute path"
        ) from None


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """`settings` with every relative path joined to `base` (made absolute), once."""
    update: dict[str, Path] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, Path) and not value.is_absolute():
            # a `~user` that cannot be expanded was refused by the settings' check (R231)
            update[name] = (base / value.expanduser()).absolute()
    if "data_dir" in update and (problem := data_dir_problem(update["data_dir"])):
        raise ConfigError(f"STEWARD_DATA_DIR: {problem}")  # as for an absolute one (R132)
    return settings.model_copy(update=update) if update else settings


def load_at_home(home: Home | None = None) -> tuple[Settings, Home]:
    """The settings as `steward` reads them at start-up: `.env` from the home, relative paths
    resolved against it. A bad value raises ConfigError."""
    home = home or find_home()
    known = setting_names(Settings.model_fields.values()) | _mcp_names(home)
    for note in check_env_file(home.env_file, known):
        print(f"steward: {note}", file=sys.stderr)
    settings = load_settings(_env_file=home.env_file)
    return resolve_paths(settings, home.dir), home


def _mcp_names(home: Home) -> set[str]:
    """The names the MCP servers file takes from the environment, found where the settings
    will look for it (STEWARD_MCP_CONFIG, else mcp.json in the data folder)."""
    from agent.mcp.config import referenced_names

    env = {k.upper(): v for k, v in env_file_values(home.env_file).items()} | {
        k.upper(): v for k, v in os.environ.items()
    }
    named = env.get("STEWARD_MCP_CONFIG", "").strip()
    where = Path(named) if named else Path(env.get("STEWARD_DATA_DIR", "").strip() or "data")
    with contextlib.suppress(RuntimeError):  # R231: `~nosuchuser`: the settings say so
        where = where.expanduser()
    path = home.dir / where
    return referenced_names(path if named else path / "mcp.json")


class DataDirBusy(RuntimeError):
    """Another process holds the data directory (a running `steward run`, or a restore)."""


class DataDirLock:
    """An exclusive `flock` on `<data dir>/steward.lock`, with the holder's pid in the file.

    `steward run` holds it for its whole life and `steward restore` while it replaces the data,
    so neither overwrites the other's. The kernel drops the lock when its process dies, so a
    crash never leaves a stale lock behind.
    """

    def __init__(self, data_dir: Path, purpose: str = "run") -> None:
        self.path = data_dir / LOCK_FILE
        self._purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock or raise DataDirBusy naming who holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise DataDirBusy(
                f"{self.path.parent} is in use by Steward ({holder}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {self._purpose}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def still_ours(self) -> bool:
        """Whether the lock file we hold is still the one at its path: deleted with the data
        directory, or the directory moved and replaced, the lock stops another Steward from
        nothing (a second one would start at once, on an empty directory)."""
        if self._fd is None:
            return False
        try:
            there = os.stat(self.path)
        except FileNotFoundError:
            return False
        except OSError:  # a network file system's hiccup (ESTALE, EIO): no sign it is gone
            return True
        try:
            held = os.fstat(self._fd)
        except OSError:
            return True
        return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    @staticmethod
    def held(data_dir: Path) -> str | None:
        """Who holds the lock of `data_dir` ("pid 123, run"), or None when nobody does."""
        path = data_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        finally:
            os.close(fd)
        return None
