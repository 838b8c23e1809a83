"""`mcp.json`: the `mcpServers` format other MCP clients use, so a block from any server's README
can be pasted in as it is.

    {"mcpServers": {
        "time":   {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "${TZ:-UTC}"}},
        "github": {"type": "http", "url": "https://api.example/mcp",
                   "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}}}

`${VAR}` and `${VAR:-default}` are expanded in command, args, env, cwd, url and headers from the
environment and Steward's `.env`; a variable that is unset and has no default is an error, never
an empty string. Expanded values are held as secrets: they are never logged, printed or shown to
the model, and error text that quotes one has it replaced by `***`. So is a key written in the
file as it is (`--token ghp_…` or `--header "Authorization: Bearer …"` in args, a key in a
URL's path): shown as `***` wherever the server is named. A word in args that only looks like
a key (a sheet's id, a commit) is `***` where the server is named, but no secret: results and
logs keep it (R187).

(Some 490 lines: what is a secret in a server's entry, expanded or written, is decided in one
place, and the file's checks with it.)
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import SecretStr

from agent.errors import ConfigError
from agent.log_scrub import register, secret_forms
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

SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_VARIABLE = re.compile(r"\$\{([^}:]*)(?::-([^}]*))?\}")
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


CREDENTIAL_NAME = re.compile(
    r"token|key|secret|passw|pwd|auth|credential|cookie|session|bearer|private|signature",
    re.IGNORECASE,
)
"""A variable or env entry whose value is a credential, by its name (`GITHUB_TOKEN`,
`OPENAI_API_KEY`, `DB_PASSWORD`); its value is kept out of results, logs and `/mcp`."""


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret, and its URL-encoded and base64 forms, shown as `***`: a server
    quoting the header or the URL it was sent (an error echoing `Bearer …`, a `?api_key=` in a
    link) would otherwise hand the credential to the model, the database and the log."""
    forms = {form for value in secrets if len(value) >= 3 for form in secret_forms(value)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def referenced_names(path: Path) -> set[str]:
    """The variables the servers file names as `${VAR}` (none when it cannot be read): kept in
    `.env` for the servers, as the README says to, they are not misspelt settings (R134)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {m[1] for m in _VARIABLE.finditer(text) if _VARIABLE_NAME.fullmatch(m[1])}


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
            raise McpConfigError(f"{path}: no such file (STEWARD_MCP_CONFIG)")
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
        # a header's value is a credential as a rule; an env entry when its name says so
        # (R112: every env value, "info" and "Europe/Paris" too, was blanked in results)
        expanded.extend(
            v for k, v in found.items() if key == "headers" or CREDENTIAL_NAME.search(k)
        )
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
        shown, literal = _shown_command(written, [command, *expanded_args])
        spec = ServerSpec(
            name,
            "stdio",
            command=command,
            args=expanded_args,
            env=mapping("env"),
            cwd=cwd,
            shown=shown,
            secrets=(*expanded, *literal),
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
    # a key written into the URL (`?api_key=…`, `user:pw@`) is a secret like a header's
    expanded += [v for _, v in parse_qsl(parts.query)] + [parts.query, parts.password or ""]
    # and one in its path (R134: hosted servers put it there, `/api/mcp/s/<key>/mcp`)
    expanded += [part for part in parts.path.split("/") if looks_like_key(part)]
    return ServerSpec(
        name,
        "http",
        url=url,
        headers=mapping("headers"),
        shown=_shown_url(str(raw["url"])),
        secrets=tuple(expanded),
    )


def _shown_url(written: str) -> str:
    """The URL as written, without a user name, a password or the query's values."""
    parts = urlsplit(written)
    host = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    path = "/".join("***" if looks_like_key(part) else part for part in parts.path.split("/"))
    return urlunsplit((parts.scheme, host, path, query, ""))


def _shown_command(written: list[str], expanded: list[str]) -> tuple[str, list[str]]:
    """The command line as written with every key in it as `***`, and the secrets among them
    (R183: a token written into args, `--token ghp_…` or `--api-key=sk-…`, was shown by
    `steward mcp check`, on the approval card, in `/status` and the log, and left in results,
    where a `${VAR}` one was hidden). A secret is the value of a flag named for a credential,
    a `--header` one (`Authorization: Bearer <this>`), a key of a known prefix, a key in a
    URL's path or what `_carried` finds; a word that only has a key's shape is `***` here but
    no secret (R187: a folder, a sheet's id or a commit blanked in results and every log
    line was the owner's own data, not a key)."""
    shown: list[str] = []
    secrets: list[str] = []
    before = ""  # what the flag before says this arg is: "credential", "header" or nothing
    for raw, value in zip(written, expanded, strict=True):
        raw = str(raw)
        flag, equals, given = raw.partition("=")
        if before and not raw.startswith("-"):  # `--token <this>`, `--header <this>`
            shown.append(_flag_value(before, raw, value, secrets))
        elif equals and (kind := _flag_kind(flag)):  # `--api-key=<this>`
            shown.append(f"{flag}={_flag_value(kind, given, value.partition('=')[2], secrets)}")
        else:
            shown.append(_shown_arg(raw, secrets))
        before = "" if equals else _flag_kind(raw)
    return " ".join(shown), list(dict.fromkeys(secrets))


def _flag_kind(arg: str) -> str:
    """What the value of the flag `arg` is: "header", "auth" (`--auth`: a scheme, or a
    credential), "credential" or "" (anything else)."""
    if arg in ("-H", "--header"):
        return "header"
    if not _credential_flag(arg):
        return ""
    return "auth" if set(_flag_words(arg)) <= {"auth", "authorization"} else "credential"


def _flag_value(kind: str, raw: str, value: str, secrets: list[str]) -> str:
    if kind == "header":
        shown = _header(raw, value, secrets)
        return _shown_arg(raw, secrets) if shown is None else shown
    return _given(raw, value, secrets, scheme_may_be=kind == "auth")


def _given(raw: str, value: str, secrets: list[str], *, scheme_may_be: bool = False) -> str:
    """A credential flag's value as shown (`***`), its expanded value kept as a secret. A path
    (`--credentials ./sa.json`) is none, nor, after `--auth`, a word of letters only (`--auth
    Basic`, `--auth oauth`): it says how, not with what, and blanking it blanked every "Basic"
    (R187). After `--password` or `--token` a word is what it says it is."""
    if _PATH.match(raw) or value.lower() in _SWITCH_WORDS:  # `--use-token true`
        return raw
    if scheme_may_be and _MODE_WORD.fullmatch(value):
        return raw
    secrets.append(value)  # `--token ${PLAIN_NAME}`: the flag says what it holds
    return raw if _VARIABLE.search(raw) else "***"


def _header(raw: str, value: str, secrets: list[str]) -> str | None:
    """A `--header` value naming a credential (`Authorization: Bearer <this>`, `X-Api-Key:
    <this>`) shown with `***` for it, the credential kept as a secret; None for any other
    header (R187: mcp-remote's README form showed the token as written)."""
    written, given = _HEADER.fullmatch(raw), _HEADER.fullmatch(value)
    if not (written and given and written[3].strip() and _CREDENTIAL_HEADER.search(written[2])):
        return None
    if given[3].strip():
        secrets.append(given[3].strip())
    return raw if _VARIABLE.search(written[3]) else f"{written[1]}***"


def _credential_flag(arg: str) -> bool:
    """`--token`, `--api-key`, `--apiKey`, `-password`, `--authToken`, `--key`; not
    `--max-tokens`, `--key-file`, nor `--sort-key`, `--partition-key`, `--hotkey`, `--monkey`
    (R187: any name ending in "key" was one, and `--sort-key createdAt` blanked every
    "createdAt")."""
    words = _flag_words(arg)
    if not words or _PLAIN_FLAG_WORDS.intersection(words):
        return False
    return words == ["key"] or any(
        w in _CREDENTIAL_WORDS
        or w.endswith(("token", "secret", "password", "apikey"))
        or (w == "key" and i > 0 and words[i - 1] in _KEY_KINDS)
        for i, w in enumerate(words)
    )


def _flag_words(arg: str) -> list[str]:
    """The words of a flag's name (`--apiKey`: api, key); none for an arg that is no flag."""
    if not (match := _FLAG.fullmatch(arg)):
        return []
    return re.split(r"[-_.]+", _CAMEL.sub("-", match[1]).lower())


def _shown_arg(raw: str, secrets: list[str]) -> str:
    """An arg with the keys written in it (not its `${VAR}`s) as `***`: what `_carried` finds
    and a key in a URL's path (as for an http server's URL, R134: mcp-remote's
    `…/api/mcp/s/<key>/mcp`) are secrets; a word of a key's shape is only `***` here, and not
    in a path at all (`/home/me/QuarterlyReports2024Q3`, `/nix/store/<hash>-node`, R187)."""
    literal = _VARIABLE.sub(lambda m: "\0" * len(m[0]), raw)  # same length: spans match `raw`
    found = [f for f in [*_carried(literal), *_url_path_keys(literal)] if "\0" not in f]
    secrets += found
    spans = [m.span() for f in found for m in re.finditer(re.escape(f), literal)]
    if not _PATH.match(literal):
        for word in _KEY_WORD.finditer(literal):
            if _PATH_SEPARATOR.search(literal, 0, word.start()):
                break  # in a path from here on: `@scope/…`, `--root=/srv/…`
            if _key_shaped(word[0]):
                spans.append(word.span())
    shown, end = [], 0
    for start, stop in sorted(spans):
        if start >= end:
            shown += [raw[end:start], "***"]
        end = max(end, stop)  # one overlapping the one before widens it
    return "".join([*shown, raw[end:]])


def _url_path_keys(literal: str) -> list[str]:
    keys: list[str] = []
    for url in _URL_IN.findall(literal):
        with contextlib.suppress(ValueError):
            keys += [p for p in urlsplit(url).path.split("/") if _key_shaped(p)]
    return keys


def _key_shaped(word: str) -> bool:
    """A known key prefix, or a run of 20 or more letters and digits with both in it: a random
    key has that, a name (`mcp-server-sequential-thinking`, `claude-3-5-sonnet-20241022`)
    breaks into words."""
    return bool(_PREFIXED_KEY.search(word)) or any(
        re.search(r"[0-9]", run) and re.search(r"[A-Za-z]", run)
        for run in _RANDOM_RUN.findall(word)
    )


_FLAG = re.compile(r"--?([A-Za-z][A-Za-z0-9_.-]*)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_CREDENTIAL_WORDS = frozenset(
    {"token", "tokens", "secret", "secrets", "password", "passwd", "pwd", "passphrase"}
    | {"credential", "credentials", "apikey", "bearer", "pat", "cookie", "auth"}
    | {"authorization"}
)
_KEY_KINDS = frozenset(  # `--<this>-key` holds a key; `--sort-key`, `--partition-key` a name
    {"api", "access", "secret", "private", "client", "license", "auth", "master"}
)
_PLAIN_FLAG_WORDS = frozenset(  # the flag names where the value is, or says how long, not what
    {"file", "path", "dir", "folder", "env", "var", "name", "type", "mode", "method", "url"}
    | {"uri", "endpoint", "header", "port", "host", "max", "min", "limit", "count", "ttl"}
    | {"timeout", "expiry", "size", "length", "budget", "no"}
)
_PATH = re.compile(r"(?:/|\./|\.\./|~/|[A-Za-z]:\\)")
_PATH_SEPARATOR = re.compile(r"[/\\]")
_MODE_WORD = re.compile(r"[A-Za-z]+")
_SWITCH_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "0", "1", "none", "null"})
_HEADER = re.compile(r"(\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s*(?:[A-Za-z]+\s+(?=\S))?)(.*)", re.S)
_CREDENTIAL_HEADER = re.compile(r"token|key|secret|auth|cookie|passw", re.IGNORECASE)
_KEY_WORD = re.compile(r"[A-Za-z0-9+_-]+={0,2}")
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+]{20,}")


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
        if CREDENTIAL_NAME.search(variable):  # ${GITHUB_TOKEN}; not ${TZ:-UTC} or ${HOME}
            expanded.append(found)
        else:  # ${DATABASE_URL}: its password, and a token of a known shape, are secrets too
            expanded.extend(_carried(found))
        return found

    return _VARIABLE.sub(substitute, value)


_PREFIXED_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-|xox[a-z]-|xapp-|gh[pousr]_|github_pat_|glpat-)[A-Za-z0-9_-]{8,}"
)


def _carried(value: str) -> list[str]:
    """Secrets in a value whose variable's name says nothing (R173: a stdio server quoting
    `postgresql://app:S3cretPw@db/prod` in an error handed the password to the model, where
    the same URL given to an http server had it redacted): a URL's password or credential
    query values, a `password=…` pair (libpq's form), a `ghp_…` key. A password that is the
    URL's user or database name (`postgres:postgres@…/postgres`) is not one: blanking the word
    everywhere blanked ordinary output (R175)."""
    found = [m[1] for m in _CREDENTIAL_PAIR.finditer(value)]
    plain = {m[1] for m in _NAMING_PAIR.finditer(value)}  # libpq's user=, dbname=, host=
    for url in _URL_IN.findall(value):
        with contextlib.suppress(ValueError):
            parts = urlsplit(url)
            plain |= {parts.username or "", parts.hostname or "", *parts.path.split("/")}
            query = parse_qsl(parts.query)
            plain |= {v for k, v in query if k.lower() in ("user", "username", "dbname")}
            found += [parts.password or ""] + [v for k, v in query if CREDENTIAL_NAME.search(k)]
    keys = [m[0] for m in _PREFIXED_KEY.finditer(value)]
    return keys + [f for f in found if f and f not in plain]


_URL_IN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_NAMING_PAIR = re.compile(r"(?i)(?<![A-Za-z0-9])(?:user|username|dbname|host)\s*=\s*([^\s&;'\",]+)")
_CREDENTIAL_PAIR = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key)\s*=\s*([^\s&;'\",]+)"
)


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
