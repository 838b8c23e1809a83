"""Settings, read from the environment and `.env`. Names are the public interface.

(Over 400 lines: every setting is declared here with the check that stops a start with one
line naming it; split, a setting and its check would live apart.)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.errors import ConfigError
from agent.log_scrub import register
from agent.mail.account import parse_folders, parse_from, parse_imap_url, parse_smtp_url
from agent.secret_shapes import looks_like_key, shown_url
from memory.longterm.ranking import Weights
from memory.people import ID_FORMS, Identity

__all__ = ["ConfigError", "Settings", "data_dir_problem", "load_settings"]


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

EMBEDDER_NAMES = (
    "minilm",
    "minilm-int8",
    "minilm-numpy",
    "none",
    "all-minilm-l6-v2",
    "minilm-fp32",
    "minilm-onnx",
    "off",
    "disabled",
)
"""STEWARD_EMBEDDER's values: the first four named in its error, the rest aliases."""


_PATH_SETTINGS = {
    "data_dir": "looks like a secret key, not a folder (not shown): put the key in its own "
    "setting, e.g. ANTHROPIC_API_KEY=sk-ant-…, and a folder here, e.g. STEWARD_DATA_DIR=data",
    "embedder_dir": "looks like a secret key, not a folder (not shown): put the key in its own "
    "setting, e.g. ANTHROPIC_API_KEY=sk-ant-…, and the model's folder here, e.g. "
    "STEWARD_EMBEDDER_DIR=/opt/models/all-MiniLM-L6-v2",
    "mcp_config": "looks like a secret key, not a file (not shown): put the key in its own "
    "setting, e.g. GITHUB_TOKEN=ghp_… named as ${GITHUB_TOKEN} in the file, and the file here, "
    "e.g. STEWARD_MCP_CONFIG=/etc/steward/mcp.json",
}
"""The settings that are paths, each with its refusal when a part of it looks like a key."""
_NAME_MAX = 255  # bytes in one name, on Linux's file systems


def _key_in_path(path: Path) -> bool:
    """Whether a part of `path` looks like a key, so it must be neither used nor shown: the
    data folder is logged, shown in /status and made on disk, and an error line names a file
    (R204: `STEWARD_DATA_DIR=sk-ant-…` did all three). A part that is an existing folder of an
    absolute path is someone's folder, not a pasted key (a model in a Hugging Face cache sits
    under `snapshots/<40 hex digits>`). A part longer than a file system takes is no key either:
    the file system refuses it, naming no value (R186)."""
    with contextlib.suppress(RuntimeError):  # no home directory to expand `~` with
        path = path.expanduser()
    made = Path(path.anchor) if path.is_absolute() else None  # None: relative, nothing exempt
    for part in path.parts[1:] if made else path.parts:
        made = made / part if made else None
        if _key_name(part) and len(os.fsencode(part)) <= _NAME_MAX and not _is_dir(made):
            return True
    return False


_KEY_PREFIX = re.compile(r"(sk-|xox[a-z]-|xapp-|gh[pousr]_|github_pat_|glpat-)")
_LONG_RUN = re.compile(r"[A-Za-z0-9+=]{20,}")


def _key_name(part: str) -> bool:
    """Whether one name of a path looks like a key: a known key prefix on 20 characters or
    more, or 20 letters and digits or more with no hyphen, underscore or dot between them,
    mixing digits, capitals and small letters (a token's random part). Narrower than
    `looks_like_key`, which any long name meets: `my-personal-assistant-data-2024`,
    `Personal-Assistant-Data-v2` and Hugging Face's
    `models--sentence-transformers--all-MiniLM-L6-v2` are folders someone named (R210)."""
    if _KEY_PREFIX.match(part) and len(part) >= 20:  # `sk-2024` is a folder's name
        return True
    return any(
        re.search(r"\d", run) and re.search(r"[a-z]", run) and re.search(r"[A-Z]", run)
        for run in _LONG_RUN.findall(part)
    )


def _is_dir(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        return path.is_dir()
    except OSError:  # a name too long, or a parent that may not be searched
        return False


def _ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.strip("[]")).version == 6
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(Path("data"), validation_alias=_env("STEWARD_DATA_DIR"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    anthropic_base_url: str | None = Field(None, validation_alias=_env("ANTHROPIC_BASE_URL"))
    model: str = Field("claude-sonnet-5-5", validation_alias=_env("STEWARD_MODEL"))
    max_tokens: int = Field(2048, ge=64, le=64000, validation_alias=_env("STEWARD_MAX_TOKENS"))
    max_steps: int = Field(8, ge=1, le=50, validation_alias=_env("STEWARD_MAX_STEPS"))
    model_retries: int = Field(4, ge=0, le=10, validation_alias=_env("STEWARD_MODEL_RETRIES"))
    model_timeout: float = Field(
        120.0, gt=0, le=900, validation_alias=_env("STEWARD_MODEL_TIMEOUT")
    )
    streaming: bool = Field(True, validation_alias=_env("STEWARD_STREAMING"))
    """Show the owner's replies as they grow (on|off); README "Streamed replies"."""
    history_tokens: int = Field(
        6000, ge=0, le=150000, validation_alias=_env("STEWARD_HISTORY_TOKENS")
    )
    daily_token_budget: int = Field(
        300_000, ge=0, validation_alias=_env("STEWARD_DAILY_TOKEN_BUDGET")
    )
    guest_daily_tokens: int = Field(
        100_000, ge=0, validation_alias=_env("STEWARD_GUEST_DAILY_TOKENS")
    )
    """Tokens a day each person other than the owner may spend in conversation (0: no limit);
    their conversations are not in the daily budget, so they never pause the owner's jobs."""
    embedder: str = Field("minilm", validation_alias=_env("STEWARD_EMBEDDER"))
    embedder_dir: Path | None = Field(None, validation_alias=_env("STEWARD_EMBEDDER_DIR"))
    embedder_idle: float = Field(
        120.0, ge=0, le=86400, validation_alias=_env("STEWARD_EMBEDDER_IDLE")
    )
    """Seconds without a memory search after which the embedder's model is let go (loaded again
    in ~0.1 s on the next one): what an idle Steward holds. 0 keeps it loaded."""
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop", validation_alias=_env("STEWARD_EVENT_LOOP")
    )
    """The event loop of `steward run`: uvloop (when installed) or asyncio's own."""
    chroma_url: str | None = Field(None, validation_alias=_env("CHROMA_URL"))
    memory_tokens: int = Field(800, ge=0, le=20000, validation_alias=_env("STEWARD_MEMORY_TOKENS"))
    memory_model: str | None = Field(None, validation_alias=_env("STEWARD_MEMORY_MODEL"))
    memory_weights: str = Field("", validation_alias=_env("STEWARD_MEMORY_WEIGHTS"))
    """Ranking weights of memory search, "name=value, …" over memory.longterm.Weights (empty:
    the defaults chosen by cross-validation; README "Memory retrieval")."""

    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_api_base: str | None = Field(None, validation_alias=_env("TELEGRAM_API_BASE"))
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_api_url: str | None = Field(None, validation_alias=_env("SLACK_API_URL"))
    telegram_allowed_users: Annotated[tuple[Identity, ...], NoDecode] = Field(
        (), validation_alias=_env("TELEGRAM_ALLOWED_USERS")
    )
    slack_allowed_users: Annotated[tuple[Identity, ...], NoDecode] = Field(
        (), validation_alias=_env("SLACK_ALLOWED_USERS")
    )
    telegram_webhook_url: str | None = Field(None, validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )

    owner: Annotated[tuple[Identity, ...], NoDecode] = Field(
        (), validation_alias=_env("STEWARD_OWNER")
    )
    timezone: str = Field("UTC", validation_alias=_env("STEWARD_TIMEZONE"))
    http_host: str = Field("127.0.0.1", validation_alias=_env("STEWARD_HTTP_HOST"))
    http_port: int = Field(8080, ge=1, le=65535, validation_alias=_env("STEWARD_HTTP_PORT"))
    web: bool = Field(True, validation_alias=_env("STEWARD_WEB"))
    public_url: str | None = Field(None, validation_alias=_env("STEWARD_PUBLIC_URL"))
    log_level: str = Field("INFO", validation_alias=_env("STEWARD_LOG_LEVEL"))
    briefing_grace: float = Field(
        120.0, ge=0, le=24 * 60, validation_alias=_env("STEWARD_BRIEFING_GRACE")
    )
    feed_timeout: float = Field(15.0, gt=0, le=300, validation_alias=_env("STEWARD_FEED_TIMEOUT"))
    feed_max_bytes: int = Field(2_000_000, ge=1024, validation_alias=_env("STEWARD_FEED_MAX_BYTES"))

    approvers: Annotated[tuple[Identity, ...], NoDecode] = Field(
        (), validation_alias=_env("STEWARD_APPROVERS")
    )
    approval_minutes: float = Field(
        15.0, gt=0, le=7 * 24 * 60, validation_alias=_env("STEWARD_APPROVAL_MINUTES")
    )
    approvals_per_minute: int = Field(
        5, ge=1, le=100, validation_alias=_env("STEWARD_APPROVALS_PER_MINUTE")
    )
    fetch_allow_hosts: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias=_env("STEWARD_FETCH_ALLOW_HOSTS")
    )
    fetch_max_bytes: int = Field(
        2_000_000, ge=1024, validation_alias=_env("STEWARD_FETCH_MAX_BYTES")
    )
    fetch_timeout: float = Field(15.0, gt=0, le=300, validation_alias=_env("STEWARD_FETCH_TIMEOUT"))
    shell_timeout: float = Field(
        30.0, gt=0, le=3600, validation_alias=_env("STEWARD_SHELL_TIMEOUT")
    )
    shell_unconfined: bool = Field(False, validation_alias=_env("STEWARD_SHELL_UNCONFINED"))
    tool_output_limit: int = Field(
        20_000, ge=1000, le=1_000_000, validation_alias=_env("STEWARD_TOOL_OUTPUT_LIMIT")
    )
    # MCP servers (issue 14): the mcpServers file, the per-call timeout, direct tools
    mcp_config: Path | None = Field(None, validation_alias=_env("STEWARD_MCP_CONFIG"))
    mcp_timeout: float = Field(60.0, gt=0, le=3600, validation_alias=_env("STEWARD_MCP_TIMEOUT"))
    # 0: only the search tool, so a turn that does not use MCP is not tainted by descriptions
    mcp_direct_tools: int = Field(
        0, ge=0, le=200, validation_alias=_env("STEWARD_MCP_DIRECT_TOOLS")
    )
    # Photos, files and voice in (issue 17): speech-to-text server and size caps
    stt_url: str | None = Field(None, validation_alias=_env("STEWARD_STT_URL"))
    stt_key: SecretStr | None = Field(None, validation_alias=_env("STEWARD_STT_KEY"))
    stt_model: str = Field("whisper-1", min_length=1, validation_alias=_env("STEWARD_STT_MODEL"))
    file_max_bytes: int = Field(
        20_000_000, ge=1024, le=2_000_000_000, validation_alias=_env("STEWARD_FILE_MAX_BYTES")
    )
    guest_daily_file_bytes: int = Field(
        50_000_000, ge=0, validation_alias=_env("STEWARD_GUEST_DAILY_FILE_BYTES")
    )
    """Bytes of files a day each person other than the owner may have saved in `inbox/` (0:
    no limit): a file Steward cannot read costs no tokens, so no allowance bounded them."""
    document_max_chars: int = Field(
        60_000, ge=1000, le=1_000_000, validation_alias=_env("STEWARD_DOCUMENT_MAX_CHARS")
    )
    comment_digest_seconds: float = Field(
        30.0, ge=0, le=3600, validation_alias=_env("STEWARD_COMMENT_DIGEST_SECONDS")
    )

    # E-mail (issue 15): one mailbox to read, watch and send from
    email_imap_url: str | None = Field(None, validation_alias=_env("EMAIL_IMAP_URL"))
    email_smtp_url: str | None = Field(None, validation_alias=_env("EMAIL_SMTP_URL"))
    email_password: SecretStr | None = Field(
        None, validate_default=True, validation_alias=_env("EMAIL_PASSWORD")
    )
    email_from: str | None = Field(None, validate_default=True, validation_alias=_env("EMAIL_FROM"))
    email_folders: Annotated[tuple[str, ...], NoDecode] = Field(
        ("INBOX",), validation_alias=_env("EMAIL_FOLDERS")
    )
    email_poll_seconds: float = Field(
        120.0, ge=5, le=3600, validation_alias=_env("EMAIL_POLL_SECONDS")
    )

    def model_post_init(self, context: object, /) -> None:
        """Every secret read is kept out of every log line from now on (agent.log_scrub)."""
        register(
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr)
        )

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            hosts = [h.strip().lower() for h in value.split(",") if h.strip()]
            for number, host in enumerate(hosts, 1):  # a URL or host:port never matched a host
                if "*" in host:  # matched only a host named "*": nothing was allowed
                    raise ValueError(
                        f"entry {number} is a pattern; hosts are matched whole, so list each "
                        "one by name, e.g. wiki.lan, nas.lan"
                    )
                if "/" in host or (":" in host and not _ipv6(host)):
                    try:
                        bare = urlsplit(host if "//" in host else f"//{host}").hostname
                    except ValueError:
                        bare = None
                    example = bare if bare and not looks_like_key(bare) else "wiki.lan"
                    raise ValueError(
                        f"entry {number} is a URL or host:port, not a host name: write the host "
                        f"alone, e.g. {example}"
                    )
            return frozenset(hosts)
        return value

    @field_validator("owner", "approvers", mode="before")
    @classmethod
    def _parse_owner(cls, value: object) -> object:
        if isinstance(value, str):  # as channels report them: "slack:u0ann" is slack:U0ANN
            parts = [part for part in value.split(",") if part.strip()]
            return tuple(_identity(part, number, None) for number, part in enumerate(parts, 1))
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # "europe/berlin", "utc": the same zone in another case, as /timezone takes it
            import zoneinfo

            known = {key.lower(): key for key in zoneinfo.available_timezones()}
            if value.lower() in known:
                return known[value.lower()]
            raise ValueError("unknown timezone (use an IANA name such as Europe/Berlin)") from None
        return value

    @field_validator(
        "anthropic_base_url",
        "telegram_api_base",
        "slack_api_url",
        "telegram_webhook_url",
        "stt_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _checked_url(value, "an http(s) URL")

    @field_validator("telegram_allowed_users", "slack_allowed_users", mode="before")
    @classmethod
    def _parse_allowed(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        channel = "telegram" if info.field_name == "telegram_allowed_users" else "slack"
        parts = [p.strip().removeprefix(f"{channel}:") for p in value.split(",")]
        return tuple(
            _identity(part, number, channel) for number, part in enumerate(filter(None, parts), 1)
        )

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else None
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ValueError("use 1-256 characters from A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        name = value.strip().lower()
        if name not in EMBEDDER_NAMES:
            raise ValueError(
                f"unknown embedder (use {', '.join(EMBEDDER_NAMES[:3])}, or none for keyword-only)"
            )
        return name

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url(cls, value: str | None) -> str | None:
        return _checked_url(value, "a Chroma server URL (http://host:port)")

    @field_validator("anthropic_api_key", mode="before")
    @classmethod
    def _api_key(cls, value: object) -> object:
        """R231: a key read with its line end (a Kubernetes secret made `--from-file`, "…\\n"
        in .env) started, and every turn was then "could not reach the model API" (the HTTP
        library refuses the header; the SDK retries it as a network error). Space around it is
        a copy accident, taken off; a line break or space inside is refused (never shown)."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            return value
        key = value.strip()
        if not key:
            raise ValueError("is only spaces: set the key (sk-ant-…), or leave the setting out")
        if not all(33 <= ord(c) <= 126 for c in key):
            raise ValueError(
                "has a line break, space or other character inside that a key does not have "
                "(not shown): paste the key again, on one line"
            )
        return key

    @field_validator(*_PATH_SETTINGS, mode="before")
    @classmethod
    def _path_text(cls, value: object) -> object:
        """R231: `STEWARD_DATA_DIR="/srv/steward/data "` (`docker --env-file` keeps a trailing
        space) made and used a second, invisible data folder beside the real one: the space
        around a path is taken off, as around a URL."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            raise ValueError("is only spaces: name a folder, or leave the setting out")
        return value.strip()

    @field_validator(*_PATH_SETTINGS)
    @classmethod
    def _path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """A key pasted here is refused before anything shows the path (R204). R116: /dev/null
        gave "cannot use /dev/null: File exists", naming no setting. A relative data folder is
        joined to Steward's home later, and checked then (agent/paths.py). R231: a `~user` that
        cannot be expanded (no such user, or `~` with no HOME and no passwd entry) was a
        traceback from every `steward` command: refused here, in one line."""
        if value is None:
            return None
        if _key_in_path(value):
            raise ValueError(_PATH_SETTINGS[str(info.field_name)])
        if str(value).startswith("~"):
            try:
                value.expanduser()
            except RuntimeError:
                user = str(value).partition("/")[0]
                raise ValueError(
                    f"{user} cannot be expanded (no such user, or no home directory): "
                    "write the path in full"
                ) from None
        absolute_dir = info.field_name == "data_dir" and value.is_absolute()
        if absolute_dir and (problem := data_dir_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("http_host")
    @classmethod
    def _http_host(cls, value: str) -> str:
        """An address or host name to listen on (R129: `http://127.0.0.1` only logged that the
        console did not start, and in webhook mode stopped Steward with exit status 1)."""
        value = value.strip()
        try:
            ipaddress.ip_address(value.strip("[]"))
            return value.strip("[]")
        except ValueError:
            pass
        labels = value.rstrip(".").split(".")
        if (
            not value
            or len(value) > 253
            or not all(_HOST_LABEL.fullmatch(label) for label in labels)
            or labels[-1].isdigit()
        ):
            raise ValueError("not an IP address or host name to listen on (e.g. 127.0.0.1)")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        value = _checked_url(value, "the console's base URL (https://host[:port])")
        if value is None:
            return None
        # as a browser writes it (review 79: `https://host:443` refused every request, since
        # browsers send `Host: host`): the name in lower case, a default port left off
        parts = urlsplit(value)
        name = (parts.hostname or "").lower()
        name = f"[{name}]" if ":" in name else name
        port = parts.port
        if port is not None and port != (443 if parts.scheme == "https" else 80):
            name = f"{name}:{port}"
        return urlunsplit(parts._replace(netloc=name)).rstrip("/")

    @field_validator("email_imap_url", "email_smtp_url")
    @classmethod
    def _mail_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            (parse_imap_url if info.field_name == "email_imap_url" else parse_smtp_url)(value)
        return value

    @field_validator("email_password")
    @classmethod
    def _mail_password(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        wanted = info.data.get("email_imap_url") or info.data.get("email_smtp_url")
        if wanted and (value is None or not value.get_secret_value()):
            raise ValueError("required when EMAIL_IMAP_URL or EMAIL_SMTP_URL is set")
        return value

    @field_validator("email_from")
    @classmethod
    def _mail_from(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            parse_from(value)
            return value
        urls = [
            parse(url)
            for parse, url in (
                (parse_smtp_url, info.data.get("email_smtp_url")),
                (parse_imap_url, info.data.get("email_imap_url")),
            )
            if url
        ]
        if not urls:
            return None
        if "@" in urls[0].username:  # the login is the address
            return urls[0].username
        raise ValueError("required when the mail login is not an address, e.g. Me <me@example.org>")

    @field_validator("email_folders", mode="before")
    @classmethod
    def _mail_folders(cls, value: object) -> object:
        return parse_folders(value) if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return upper

    @property
    def database_path(self) -> Path:
        return self.data_dir / "steward.db"

    @property
    def policy_path(self) -> Path:
        return self.data_dir / "policy.toml"

    @property
    def mcp_config_path(self) -> Path:
        """The MCP servers file: STEWARD_MCP_CONFIG, else mcp.json in the data directory."""
        return self.mcp_config if self.mcp_config is not None else self.data_dir / "mcp.json"

    @property
    def mcp_dir(self) -> Path:
        """Where each MCP server gets a working directory of its own (never Steward's)."""
        return self.data_dir / "mcp"

    @property
    def workspace(self) -> Path:
        return self.data_dir / "workspace"

    @property
    def memory_ranking(self) -> Weights:
        """STEWARD_MEMORY_WEIGHTS as the frozen Weights the memory store is built with."""
        return Weights.parse(self.memory_weights)

    @field_validator("memory_weights")
    @classmethod
    def _memory_weights(cls, value: str) -> str:
        """A bad name or value stops start-up with its message, by entry number: Weights.parse's
        own message quotes the entry, and a key pasted here must not reach the journal."""
        names = [f.name for f in fields(Weights)]
        for number, part in enumerate(filter(None, (p.strip() for p in value.split(","))), 1):
            try:
                Weights.parse(part)
            except ValueError as exc:
                if repr(part) not in str(exc):
                    raise  # a range, said without the value
                name = part.partition("=")[0].strip()
                if name in names:
                    raise ValueError(
                        f"entry {number}: {name} has no value or not a number"
                    ) from None
                raise ValueError(
                    f"entry {number}: expected name=value, name one of {', '.join(names)}"
                ) from None
        return value

    @model_validator(mode="after")
    def _channels_whole(self) -> Settings:
        """A channel half configured started the console without a word."""
        if self.slack_bot_token is None:
            for name in ("slack_app_token", "slack_signing_secret"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name.upper()} is set but SLACK_BOT_TOKEN is not: Slack needs its "
                        "bot token (xoxb-…) too"
                    )
        elif self.slack_app_token is None and self.slack_signing_secret is None:
            raise ValueError(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode, xapp-…) nor "
                "SLACK_SIGNING_SECRET (HTTP mode): Slack needs one of them"
            )
        token = self.telegram_bot_token
        if token is not None and not re.fullmatch(r"\d+:[\w-]+", token.get_secret_value()):
            # aiogram refused it only once the channel started: exit 1, and systemd restarted
            # it every 5 s for ever (review 116); the value is a secret, never shown
            raise ValueError(
                "TELEGRAM_BOT_TOKEN is not a bot token (digits, a colon, then letters, as "
                "@BotFather gives it: 123456:ABC-DEF…)"
            )
        if self.telegram_webhook_url is not None:
            if self.telegram_bot_token is None:
                raise ValueError(
                    "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_BOT_TOKEN is not: the webhook "
                    "is for a bot"
                )
            if self.telegram_webhook_url.startswith("http://") and not self.telegram_api_base:
                raise ValueError(
                    "TELEGRAM_WEBHOOK_URL: Telegram sends webhooks to https:// addresses only "
                    "(http:// only through a local Bot API server, TELEGRAM_API_BASE)"
                )
        return self

    @property
    def chroma_path(self) -> Path:
        """Where embedded Chroma keeps the memory vectors (unused with CHROMA_URL)."""
        return self.data_dir / "chroma"


def _checked_url(value: str | None, what: str) -> str | None:
    """An http(s) URL with a host and no `user:password@`: it is shown in /status, the console
    and the log (keys have settings of their own). The error shows the value only as
    `shown_url` does, since a key pasted into the wrong setting would reach the journal."""
    if value is None:
        return None
    value = value.strip()  # `docker --env-file` keeps a trailing space
    shown = shown_url(value) or "the value"
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is no number: "https://user:password"
    except ValueError:
        raise ValueError(f"{shown} is not {what}") from None
    if parts.username or parts.password:
        raise ValueError("put no user or password in the URL (it is shown in /status and logs)")
    if (
        parts.scheme.lower() not in ("http", "https")
        or not value.partition(":")[2].startswith("//")
        or not parts.hostname
    ):
        raise ValueError(f"{shown} is not {what}")
    return parts.scheme.lower() + value[len(parts.scheme) :]  # "HTTP://" as "http://": later
    # checks (a webhook must be https) read the scheme as written


def _identity(text: str, number: int, channel: str | None) -> Identity:
    """Entry `number` of an identity list, checked; the error names the entry, never its text
    (Identity's own message quotes it, and a token pasted into the list would be shown)."""
    try:
        identity = Identity(channel, text.strip()) if channel else Identity.parse(text)
    except ValueError:
        raise ValueError(
            f"entry {number} is not channel:id (for example telegram:123456789)"
        ) from None
    try:
        return identity.checked()
    except ValueError:
        form = ID_FORMS.get(identity.canonical().channel, (None, "a valid id"))[1]
        commas = " (separate entries with commas)" if " " in text.strip() else ""
        raise ValueError(f"entry {number} is not {form}{commas}") from None


def data_dir_problem(path: Path) -> str | None:
    """Why an absolute data folder cannot be used, or None (R129: /etc/passwd/x exited 1 with
    "Not a directory", restarted by systemd for ever). R186: a name too long for the file
    system, or a parent that may not be searched, made `exists()` itself raise: a traceback."""
    try:
        if path.exists():
            return None if path.is_dir() else f"{path} is not a folder"
        above = next((p for p in path.parents if p.exists()), None)
        if above is None or not above.is_dir():
            return f"cannot be made: {above} is not a folder"
        if not os.access(above, os.W_OK | os.X_OK):
            return f"cannot be made in {above}: it is not writable"
    except OSError as exc:
        return f"cannot be used: {exc.strerror or exc}"
    return None


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except UnicodeDecodeError as exc:  # the .env file, read by python-dotenv
        raise ConfigError(
            f".env: not UTF-8 (byte {exc.start}); save it as UTF-8 and start again"
        ) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a check across settings: its message names them
            raise ConfigError(message) from None
        message = _unquoted(message, error.get("input"))
        raise ConfigError(f"{str(error['loc'][0]).upper()}: {message}") from None


def _unquoted(message: str, value: object) -> str:
    """`message` without the value or any of its comma-separated entries quoted in it: the
    checks here never quote one, but one written elsewhere may, and a value can be a key."""
    if isinstance(value, str):
        for part in sorted({value, *value.split(",")}, key=len, reverse=True):
            if part.strip():
                message = message.replace(repr(part), "…").replace(repr(part.strip()), "…")
    return message
