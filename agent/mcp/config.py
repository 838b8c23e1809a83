"""`mcp.json`: the `mcpServers` format other MCP clients use, so a block from any server's README
can be pasted in as it is.

    {"mcpServers": {
        "time":   {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "${TZ:-UTC}"}},
        "github": {"type": "http", "url": "https://api.example/mcp",
                   "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}}}

`${VAR}` and `${VAR:-default}` are expanded in command, args, env, cwd, url and headers from the
environment and Steward's `.env`; a variable that is unset and has no default is an error, never
an empty string. Credentials are held as secrets: they are never logged, printed or shown to the
model, and error text that quotes one has it replaced by `***`. What is one, expanded or written
as it is (`--token ghp_…`, `-H "Authorization: Bearer …"` or `-e OPENAI_KEY=…` in args, a
password in a DSN in `env`, a key in a URL's path), is decided in `entry_secrets.py`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import SecretStr

from agent.errors import ConfigError
from agent.log_scrub import register, secret_forms
from agent.mcp.entry_secrets import VARIABLE, header_secrets, named_secrets, shown_command
from agent.secret_shapes import looks_like_key

__all__ = [
    "McpConfig",
    "McpConfigError",
    "ServerSpec",
    "environment",
    "load_mcp_config",
    "redact",
    "referenced_names",
]

SERVER_NAME = re.compile(r"(?=.{1,32}\Z)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
"""1-32 letters, digits and single hyphens, as the error and the README say (R204: `a--b`
and `a-` were taken)."""
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KNOWN_KEYS = {"type", "command", "args", "env", "cwd", "url", "headers", "disabled"}
_REFUSED_KEYS = {"autoApprove", "alwaysAllow", "autoapprove", "trust"}

log = logging.getLogger(__name__)


class McpConfigError(ConfigError):
    """The MCP config file is wrong; one line naming the file, the server and the problem."""


@dataclass(frozen=True)
class ServerSpec:
    """One configured server, with its `${VAR}`s expanded (`shown` keeps them unexpanded)."""

    name: str
    transport: Literal["stdio", "http"]
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, SecretStr] = field(default_factory=dict)
    cwd: Path | None = None
    url: str = ""
    headers: Mapping[str, SecretStr] = field(default_factory=dict)
    shown: str = ""
    """What it runs or reaches, as written in the file (no expanded value in it), with any key
    written in it as `***` (R183)."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Every expanded credential and every key written in the file, so error text quoting one
    can be redacted."""

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


@dataclass(frozen=True)
class McpConfig:
    path: Path
    servers: tuple[ServerSpec, ...] = ()
    disabled: tuple[str, ...] = ()


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret, and its URL-encoded and base64 forms, shown as `***`: a server
    quoting the header or the URL it was sent (an error echoing `Bearer …`, a `?api_key=` in a
    link) would otherwise hand the credential to the model, the database and the log."""
    forms = {form for value in secrets if len(value) >= 3 for form in secret_forms(value)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _shown_path(path: Path) -> str:
    """` (path)` for an error line, or ` (not shown)` when a part of it looks like a key (R204:
    a key pasted into STEWARD_MCP_CONFIG reached the journal in this line)."""
    if any(looks_like_key(part) for part in path.parts):
        return " (not shown: it looks like a secret key)"
    return f" ({path})"


def referenced_names(path: Path) -> set[str]:
    """The variables the servers file names as `${VAR}` (none when it cannot be read): kept in
    `.env` for the servers, as the README says to, they are not misspelt settings (R134)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {m[1] for m in VARIABLE.finditer(text) if _VARIABLE_NAME.fullmatch(m[1])}


def environment(env_file: Path | None = Path(".env")) -> dict[str, str]:
    """What `${VAR}` may name: the process environment over the values in Steward's `.env`
    (pydantic-settings reads that file without exporting it)."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    return values | dict(os.environ)


def load_mcp_config(
    path: Path, environ: Mapping[str, str] | None = None, *, required: bool = False
) -> McpConfig:
    """Read and check the file; a missing file is no servers unless `required`."""
    if not path.exists():
        if required:
            raise McpConfigError(f"STEWARD_MCP_CONFIG: no such file{_shown_path(path)}")
        return McpConfig(path)
    env = environment() if environ is None else environ
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise McpConfigError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise McpConfigError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
        raise McpConfigError(f'{path}: expected {{"mcpServers": {{"name": {{...}}}}}}')
    if "mcpServers" not in data and data:  # R112: "servers" (VS Code's) gave no servers, silently
        raise McpConfigError(
            f'{path}: no "mcpServers" in it (it has {", ".join(map(repr, sorted(data)))}); '
            'write the servers under "mcpServers", as other MCP clients do'
        )
    servers: list[ServerSpec] = []
    disabled: list[str] = []
    for name, raw in data.get("mcpServers", {}).items():
        where = f"{path}: server {name!r}"
        if not SERVER_NAME.fullmatch(name):
            raise McpConfigError(
                f"{where}: a server name is 1-32 letters, digits and single hyphens "
                "(it becomes part of tool names mcp__<server>__<tool>)"
            )
        if not isinstance(raw, dict):
            raise McpConfigError(f"{where}: expected an object with command or url")
        if not isinstance(raw.get("disabled", False), bool):  # "true" started the server
            raise McpConfigError(f"{where}: disabled must be true or false, without quotes")
        if raw.get("disabled") is True:
            disabled.append(name)
            continue
        servers.append(_server(name, raw, env, where))
    register(v for spec in servers for v in spec.secrets)  # kept out of every log line
    return McpConfig(path, tuple(servers), tuple(disabled))


def _server(name: str, raw: dict[str, Any], env: Mapping[str, str], where: str) -> ServerSpec:
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    kind = raw.get("type")
    if kind is None:
        kind = "http" if "url" in raw and "command" not in raw else "stdio"
    if kind == "streamable-http":
        kind = "http"
    if kind == "sse":
        raise McpConfigError(f"{where}: the old SSE transport is not supported; use type http")
    if kind not in ("stdio", "http"):
        raise McpConfigError(f"{where}: type must be stdio or http, not {kind!r}")
    expanded: list[str] = []

    def text(value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise McpConfigError(f"{where}: {key} must be a string")
        return _expand(value, env, f"{where}: {key}", expanded)

    def mapping(key: str) -> dict[str, SecretStr]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise McpConfigError(f"{where}: {key} must be an object of strings")
        found = {str(k): text(v, f"{key}.{k}") for k, v in value.items()}
        # a header's value is a credential as a rule; an env entry's when its name says so
        # (R112: every env value, "info" and "Europe/Paris" too, was blanked in results), and
        # a DSN's password or a `ghp_…` key in any (R190)
        for k, v in found.items():
            expanded.extend(header_secrets(k, v) if key == "headers" else named_secrets(k, v))
        return {k: SecretStr(v) for k, v in found.items()}

    if refused := [key for key in unknown if key in _REFUSED_KEYS]:
        raise McpConfigError(
            f"{where}: {refused[0]!r} is not honoured: what runs unasked is decided by rules "
            'in policy.toml (e.g. tool = "mcp__<server>__<tool>", risk = "read")'
        )
    if unknown:
        log.warning("%s: ignoring the keys %s", where, ", ".join(unknown))
    if kind == "stdio":
        if "url" in raw:
            raise McpConfigError(f"{where}: a stdio server has a command, not a url")
        if not raw.get("command"):
            raise McpConfigError(f"{where}: command is missing")
        args = raw.get("args", [])
        if not isinstance(args, list):
            raise McpConfigError(f"{where}: args must be a list of strings")
        command = text(raw["command"], "command")
        expanded_args = tuple(text(a, f"args[{i}]") for i, a in enumerate(args))
        cwd = Path(text(raw["cwd"], "cwd")) if raw.get("cwd") else None
        written = [raw["command"], *args]
        shown, literal = shown_command(written, [command, *expanded_args])
        spec = ServerSpec(
            name,
            "stdio",
            command=command,
            args=expanded_args,
            env=mapping("env"),
            cwd=cwd,
            shown=shown,
            secrets=tuple(dict.fromkeys(s for s in (*expanded, *literal) if s)),
        )
        return spec
    if "command" in raw:
        raise McpConfigError(f"{where}: an http server has a url, not a command")
    if not raw.get("url"):
        raise McpConfigError(f"{where}: url is missing")
    url = text(raw["url"], "url")
    if not url.startswith(("http://", "https://")):
        raise McpConfigError(f"{where}: url must start with http:// or https://")
    parts = urlsplit(url)
    # a key written into the URL (`?api_key=…`, `user:pw@`) is a secret like a header's, its
    # query's values decoded and as written (`+` in a key is a space, decoded)
    expanded += [v for _, v in parse_qsl(parts.query)] + [parts.query, parts.password or ""]
    expanded += [pair.partition("=")[2] for pair in parts.query.split("&")]
    if parts.password:  # and as sent, decoded, in `Authorization: Basic <user:password>` (R251)
        user, password = unquote(parts.username or ""), unquote(parts.password)
        expanded += [password, f"{user}:{password}"]
    # and one in its path (R134: hosted servers put it there, `/api/mcp/s/<key>/mcp`)
    expanded += [part for part in parts.path.split("/") if looks_like_key(part)]
    return ServerSpec(
        name,
        "http",
        url=url,
        headers=mapping("headers"),
        shown=_shown_url(str(raw["url"])),
        secrets=tuple(dict.fromkeys(s for s in expanded if s)),
    )


def _shown_url(written: str) -> str:
    """The URL as written, without a user name, a password or the query's values."""
    parts = urlsplit(written)
    host = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    path = "/".join("***" if looks_like_key(part) else part for part in parts.path.split("/"))
    return urlunsplit((parts.scheme, host, path, query, ""))


def _expand(value: str, env: Mapping[str, str], where: str, expanded: list[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        variable, default = match.group(1), match.group(2)
        if not _VARIABLE_NAME.fullmatch(variable):
            raise McpConfigError(f"{where}: ${{{variable}}} is not a variable name")
        if variable.upper() in own_secrets():
            raise McpConfigError(
                f"{where}: ${{{variable}}} is Steward's own secret and is never given to an "
                "MCP server; give the server a key of its own"
            )
        found = env.get(variable)
        if found is None or (found == "" and default is not None):
            if default is None:
                raise McpConfigError(f"{where}: ${{{variable}}} is not set and has no default")
            found = default
        # ${GITHUB_TOKEN}; not ${TZ:-UTC} or ${HOME}; of ${DATABASE_URL} its password
        expanded.extend(named_secrets(variable, found))
        return found

    return VARIABLE.sub(substitute, value)


@functools.cache
def own_secrets() -> frozenset[str]:
    """The variables of Steward's own secret settings (the model key, the channel tokens, the
    mail password, …): `${…}` may not hand them to a server."""
    from pydantic import AliasChoices

    from agent.config import Settings

    names: set[str] = set()
    for info in Settings.model_fields.values():
        if "SecretStr" not in str(info.annotation):
            continue
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(c).upper() for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
    return frozenset(names)
