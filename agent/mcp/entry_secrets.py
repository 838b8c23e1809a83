"""What in an MCP server's `mcp.json` entry is a secret: never shown where the server is named,
and `***` in results and logs. Apart from `config.py`, which reads and checks the file, since
the rules grew with each way a credential is written (R173, R183, R187, R190) and are read
together; `config.py` imports this module, never the other way round.

- A name says its value is a credential by its words, split as a flag's are (`GITHUB_TOKEN`,
  `DB_PASS`, `OPENAI_KEY`, `--api-key`; not `GIT_AUTHOR_NAME`, `MAX_TOKENS`, `--sort-key`):
  an `env` entry's, a `${VAR}`'s, a `NAME=value` arg's (`-e OPENAI_KEY=…`), a flag's. A path
  or a switch (`true`) after one is none, unless the name says the value is the secret itself.
- In any value, whatever its name, `carried` finds a URL's password, a `password=` pair and a
  key of a known shape (`ghp_…`, `sk_live_…`, a JWT).
- A header's value, and for a credential header its part after the scheme (`Bearer <this>`),
  in `headers` and in args (`-H "Authorization: Bearer …"`, `Authorization=…`, or the name
  and the value as two args).
- A word in args that only has a key's shape is `***` where the server is named, but no secret.

(Some 420 lines: the ways a credential is written in an entry, each with its reviewed case, are
one rule read together; split, a way would be checked in one place and missed in the other.)
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "CREDENTIAL_NAME",
    "VARIABLE",
    "carried",
    "credential_name",
    "header_secrets",
    "named_secrets",
    "shown_command",
]

VARIABLE = re.compile(r"\$\{([^}:]*)(?::-([^}]*))?\}")
"""`${VAR}` or `${VAR:-default}`, as the file may write it in command, args, env, url, headers."""

CREDENTIAL_NAME = re.compile(
    r"token|key|secret|passw|pwd|auth|credential|cookie|session|bearer|private|signature",
    re.IGNORECASE,
)
"""A URL's query key whose value is a credential (`?api_key=`, `?X-Amz-Signature=`): a query
value is a value alone, never ordinary words. Names of variables and `env` entries are judged
by their words instead (`credential_name`, R190: "auth" in GIT_AUTHOR_NAME blanked "Jane Doe")."""


def credential_name(name: str) -> bool:
    """Whether a `${VAR}`, an `env` entry or a `NAME=value` arg called `name` holds a credential,
    by its words as a flag's (R190: `CREDENTIAL_NAME` matched inside words, and "Jane Doe", 4096
    and 100 of GIT_AUTHOR_NAME, MAX_TOKENS and SESSION_PAGE_SIZE read `***` in results). As a
    name's last word, KEY is a key (`OPENAI_KEY`, `URLKEY`) unless it names a field or a
    public key (`SORT_KEY`, `PUBLIC_KEY`, `HOTKEY`); a flag's is one only after `api`, …"""
    words = _words(name)
    if _credential_words(words, _PLAIN_NAME_WORDS):
        # AUTH_REGION, COOKIE_DOMAIN: a setting of the auth, not its secret (R192: every
        # "us-east-1" in results was blanked); a name with a stronger word is one all the same
        weak = set(words) & {"auth", "authorization", "cookie"}
        strong = [w for w in words if w not in weak and _credential_words([w], frozenset())]
        return strong != [] or not (weak and _AUTH_SETTINGS.intersection(words))
    if not words or _PLAIN_NAME_WORDS.intersection(words):  # MAX_KEY, KEY_FILE
        return False
    if words[-1] == "pin":  # SIM_PIN; not a flag's (`--pin` pins a version)
        return True
    *before, last = words
    kind = before[-1] if last == "key" and before else last.removesuffix("key")
    return last.endswith("key") and bool(kind) and kind not in _FIELD_KEYS


def named_secrets(name: str, value: str) -> list[str]:
    """The secrets in the value of the `env` entry or `${VAR}` `name`: all of it when the name
    says so (and its part after a scheme, `Bearer <this>`), else what `carried` finds, as for
    any value (R190: a password in a DSN or a `ghp_…` key written in `env` under a plain name
    reached the model and the log, where the same as `${DATABASE_URL}` did not). A path
    (GOOGLE_APPLICATION_CREDENTIALS=/home/me/sa.json: where the key is) or a switch is none."""
    words = _words(name)
    if credential_name(name) and not _no_secret(words, value):
        return [value, *_after_scheme(value), *carried(value)]
    return carried(value)


def header_secrets(name: str, value: str) -> list[str]:
    """The secrets of an http server's header: its whole value, as every header is one, and a
    credential header's part after the scheme (R190: a server quoting the token alone, "token
    3f9a… has expired", passed it on where `Bearer 3f9a…` was blanked); a `Basic` one's
    `user:password` and password, decoded, and a `Cookie`'s session values (R251: a server
    naming the session or the user it refused passed them on)."""
    found = [value]
    if _CREDENTIAL_HEADER.search(name) and (given := _credential_part(value)):
        found.append(given)
        if _scheme(value).strip().lower() == "basic":
            found += _basic(given)
    if name.strip().lower() == "cookie":
        found += _cookie_values(value)
    return found


def _basic(given: str) -> list[str]:
    """`user:password` and the password of a Basic credential, or none if it is no base64 of
    that."""
    try:
        decoded = base64.b64decode(given, validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return []
    password = decoded.partition(":")[2]
    return [decoded, password] if password else []


def _cookie_values(value: str) -> list[str]:
    """The values of a `Cookie` header's `name=value` pairs that are credentials: named for one
    (`session`, `PHPSESSID`, `connect.sid`, `csrftoken`) or of a key's shape; not `theme=dark`
    or `lang=en` (blanking a plain word blanked it in every result, R192)."""
    found = []
    for pair in value.split(";"):
        name, equals, given = (part.strip() for part in pair.partition("="))
        if equals and given and (_SESSION_NAME.search(name) or _key_shaped(given)):
            found.append(given)
    return found


def carried(value: str) -> list[str]:
    """Secrets in a value whose name says nothing (R173: a stdio server quoting
    `postgresql://app:S3cretPw@db/prod` in an error handed the password to the model, where
    the same URL given to an http server had it redacted): a URL's password or credential
    query values, a `password=…` pair (libpq's form), a key of a known shape. A password that
    is the URL's user or database name (`postgres:postgres@…/postgres`) is not one: blanking
    the word everywhere blanked ordinary output (R175)."""
    found = [m[1] for m in _CREDENTIAL_PAIR.finditer(value)]
    plain = {m[1] for m in _NAMING_PAIR.finditer(value)}  # libpq's user=, dbname=, host=
    for url in _URL_IN.findall(value):
        with contextlib.suppress(ValueError):
            parts = urlsplit(url)
            plain |= {parts.username or "", parts.hostname or "", *parts.path.split("/")}
            query = parse_qsl(parts.query)
            plain |= {v for k, v in query if k.lower() in ("user", "username", "dbname")}
            found += [parts.password or ""] + [v for k, v in query if CREDENTIAL_NAME.search(k)]
    keys = [m[0] for m in _KNOWN_KEY.finditer(value)]
    return keys + [f for f in found if f and f not in plain]


def shown_command(written: list[str], expanded: list[str]) -> tuple[str, list[str]]:
    """The command line as written with every key in it as `***`, and the secrets among them
    (R183: a token written into args, `--token ghp_…` or `--api-key=sk-…`, was shown by
    `steward mcp check`, on the approval card, in `/status` and the log, and left in results,
    where a `${VAR}` one was hidden). A secret is the value of a flag named for a credential,
    of a `NAME=value` arg so named (`-e OPENAI_KEY=<this>`), a credential header's
    (`-H "Authorization: Bearer <this>"`, `Authorization=Bearer <this>`, `-H Authorization
    "Bearer <this>"`: R190), a key in a URL's path or what `carried` finds; a word that only
    has a key's shape is `***` here but no secret (R187: a folder, a sheet's id or a commit
    blanked in results and every log line was the owner's own data, not a key)."""
    shown: list[str] = []
    secrets: list[str] = []
    before = ""  # the flag this arg is the value of, or "header:<name>" after `-H <name>`
    for raw, value in zip(written, expanded, strict=True):
        raw = str(raw)
        name, equals, given = raw.partition("=")
        if before and not raw.startswith("-"):  # `--token <this>`, `-H <this>`
            shown.append(_value(before, raw, value, secrets))
            named = before in _HEADER_FLAGS and _HEADER_NAME.fullmatch(raw)
            before = f"header:{raw}" if named else ""  # `-H Authorization <the value>`
        elif equals and _takes_value(name):  # `--api-key=<this>`, `--header=<this>`
            shown.append(f"{name}={_value(name, given, value.partition('=')[2], secrets)}")
            before = ""
        elif equals and _ENV_NAME.fullmatch(name) and credential_name(name):  # `OPENAI_KEY=…`
            shown.append(f"{name}={_given(given, value.partition('=')[2], secrets, _words(name))}")
            before = ""
        else:
            shown.append(_shown_arg(raw, secrets))
            before = raw if not equals and _takes_value(raw) else ""
    return " ".join(shown), list(dict.fromkeys(secrets))


def _takes_value(arg: str) -> bool:
    """Whether the flag `arg` is followed by a header or a credential."""
    return arg in _HEADER_FLAGS or _credential_flag(arg)


def _value(before: str, raw: str, value: str, secrets: list[str]) -> str:
    """The arg after `before` (a header flag, a header's name, a credential flag) as shown."""
    if before in _HEADER_FLAGS:
        shown = _header(raw, value, secrets)
        if shown is None:
            shown = _json_headers(raw, value, secrets)
        return _shown_arg(raw, secrets) if shown is None else shown
    if before.startswith("header:"):  # `-H Authorization <this>`, mcp-proxy's form (R190)
        if _CREDENTIAL_HEADER.search(before.removeprefix("header:")) and raw.strip():
            return _credential(raw, value, secrets)
        return _shown_arg(raw, secrets)
    return _given(raw, value, secrets, _flag_words(before))


def _given(raw: str, value: str, secrets: list[str], words: list[str]) -> str:
    """The value of a flag or a `NAME=` named `words` for a credential as shown (`***`), its
    expanded value kept as a secret. A switch (`--use-token true`) is none, nor a path
    (`--credentials ./sa.json`) unless the name says the value is the secret (`--password`),
    nor, after `--auth`, a word of letters only (`--auth Basic`, `--auth oauth`): it says
    how, not with what, and blanking it blanked every "Basic" (R187)."""
    if _no_secret(words, value) or (_PATH.match(raw) and not _names_the_secret(words)):
        return raw
    if set(words) <= {"auth", "authorization"} and _MODE_WORD.fullmatch(value):
        return raw
    secrets += [value, *_after_scheme(value)]  # `--token ${PLAIN_NAME}`: the flag says so
    return raw if VARIABLE.search(raw) else "***"


def _header(raw: str, value: str, secrets: list[str]) -> str | None:
    """A header arg naming a credential (`Authorization: Bearer <this>`, `X-Api-Key: <this>`,
    or `Name=value`, mcporter's form: R190) shown with `***` for it, the credential kept as a
    secret; None for any other header (R187: mcp-remote's README form showed the token)."""
    written, given = _HEADER.fullmatch(raw), _HEADER.fullmatch(value)
    if not (written and given and written[3].strip() and _CREDENTIAL_HEADER.search(written[2])):
        return None
    return written[1] + _credential(written[3], given[3], secrets)


def _json_headers(raw: str, value: str, secrets: list[str]) -> str | None:
    """Headers given as one JSON object (`--headers '{"Authorization": "Bearer <this>"}'`),
    shown with `***` for each credential header's token, kept as secrets; None for an arg
    that is no JSON object."""
    try:
        written, given = json.loads(raw), json.loads(value)
    except ValueError:
        return None
    if not (isinstance(written, dict) and isinstance(given, dict)):
        return None
    shown: dict[str, object] = {}
    for name, was in written.items():
        now = given.get(name)
        credential = _CREDENTIAL_HEADER.search(name) and isinstance(now, str)
        if credential and isinstance(was, str) and was.strip():
            shown[name] = _credential(was, now, secrets)
        else:
            shown[name] = was
    return json.dumps(shown, ensure_ascii=False)


def _credential(raw: str, value: str, secrets: list[str]) -> str:
    """A credential header's value as shown: its scheme (`Bearer `) and `***`, the part after
    the scheme kept a secret."""
    if given := _credential_part(value):
        secrets.append(given)
    return raw if VARIABLE.search(raw) else f"{_scheme(raw)}***"


def _credential_part(value: str) -> str:
    """A header value without its scheme: `3f9a…` of `Bearer 3f9a…`."""
    return value[len(_scheme(value)) :].strip()


def _scheme(value: str) -> str:
    """The scheme a header value starts with and the space after it (`Bearer `), or ""."""
    return match[0] if (match := _SCHEME.match(value)) else ""


_SCHEMES = frozenset({"bearer", "basic", "token", "bot", "digest", "apikey", "key", "dpop"})
"""Authorization schemes: the word before a credential, never the credential (R192: any two
words were taken for one, and "write" of "read write" was blanked in every result)."""


def _after_scheme(value: str) -> list[str]:
    """The token of a value that is a scheme and one token (`Bearer 3f9a…`), else none."""
    match = re.fullmatch(r"\s*([A-Za-z]+)\s+(\S+)\s*", value)
    return [match[2]] if match and match[1].lower() in _SCHEMES else []


def _no_secret(words: list[str], value: str) -> bool:
    """A credential's name over a value that is none: a switch (`true`), or a path where the
    name does not say the value is the secret itself (a key file's, R190)."""
    if value.strip().lower() in _SWITCH_WORDS:
        return True
    return bool(_PATH.match(value)) and not _names_the_secret(words)


def _names_the_secret(words: list[str]) -> bool:
    """The name says its value is the password or token itself, a path or not (`/Zq7…` is a
    password after `--password`; after `--credentials` or GOOGLE_APPLICATION_CREDENTIALS, a
    file's path)."""
    return any(w in _SECRET_ITSELF or w.endswith(_CREDENTIAL_ENDINGS[:3]) for w in words)


def _credential_flag(arg: str) -> bool:
    """`--token`, `--api-key`, `--apiKey`, `-password`, `--authToken`, `--key`, `--db-pass`,
    `--jwt`; not `--max-tokens`, `--key-file`, nor `--sort-key`, `--partition-key`, `--hotkey`,
    `--monkey` (R187: any name ending in "key" was one, and `--sort-key createdAt` blanked
    every "createdAt")."""
    return _credential_words(_flag_words(arg), _PLAIN_FLAG_WORDS)


def _credential_words(words: list[str], plain: frozenset[str]) -> bool:
    """A name of these words is a credential's: one of them says so, or "pass", "jwt", "creds"
    ends it (`--db-pass`; not `--pass-through`, `--jwt-algorithm`, "passenger", "bypass"), and
    none of `plain` is among them (`--token-file`, MAX_TOKENS)."""
    if not words or plain.intersection(words):
        return False
    return (
        words == ["key"]
        or words[-1] in _LAST_CREDENTIAL_WORDS
        or any(
            w in _CREDENTIAL_WORDS
            or w.endswith(_CREDENTIAL_ENDINGS)
            or (w == "key" and i > 0 and words[i - 1] in _KEY_KINDS)
            or (w in _ONE_TIME_WORDS and i > 0 and words[i - 1] in _ONE_TIME_KINDS)
            for i, w in enumerate(words)
        )
    )


def _flag_words(arg: str) -> list[str]:
    """The words of a flag's name (`--apiKey`: api, key); none for an arg that is no flag."""
    match = _FLAG.fullmatch(arg)
    return _words(match[1]) if match else []


def _words(name: str) -> list[str]:
    """The words of a name (`GITHUB_TOKEN`, `apiKey`, `db-pass`), lower case."""
    return [w for w in re.split(r"[-_.]+", _CAMEL.sub("-", name).lower()) if w]


def _shown_arg(raw: str, secrets: list[str]) -> str:
    """An arg with the keys written in it (not its `${VAR}`s) as `***`: what `carried` finds
    and a key in a URL's path (as for an http server's URL, R134: mcp-remote's
    `…/api/mcp/s/<key>/mcp`) are secrets; a word of a key's shape is only `***` here, and not
    in a path at all (`/home/me/QuarterlyReports2024Q3`, `/nix/store/<hash>-node`, R187)."""
    literal = VARIABLE.sub(lambda m: "\0" * len(m[0]), raw)  # same length: spans match `raw`
    found = [f for f in [*carried(literal), *_url_path_keys(literal)] if "\0" not in f]
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
    """A known key shape, or a run of 20 or more letters and digits with both in it: a random
    key has that, a name (`mcp-server-sequential-thinking`, `claude-3-5-sonnet-20241022`)
    breaks into words."""
    return bool(_KNOWN_KEY.search(word)) or any(
        re.search(r"[0-9]", run) and re.search(r"[A-Za-z]", run)
        for run in _RANDOM_RUN.findall(word)
    )


_FLAG = re.compile(r"--?([A-Za-z][A-Za-z0-9_.-]*)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CREDENTIAL_WORDS = frozenset(
    {"token", "tokens", "secret", "secrets", "password", "passwd", "pwd", "passphrase"}
    | {"credential", "credentials", "apikey", "bearer", "pat", "cookie", "auth"}
    | {"authorization", "passcode", "mnemonic", "pincode", "puk"}
)
_CREDENTIAL_ENDINGS = ("token", "secret", "password", "apikey")  # `--authToken`, PGPASSWORD
_LAST_CREDENTIAL_WORDS = frozenset({"pass", "jwt", "creds"})  # R190: `--db-pass`, `--jwt`
_SECRET_ITSELF = frozenset(
    {"token", "tokens", "secret", "secrets", "password", "passwd", "pwd", "passphrase"}
    | {"pass", "jwt", "bearer", "pat", "cookie", "passcode", "mnemonic", "seed", "pincode"}
    | {"puk", "phrase", "code", "codes"}
)
_KEY_KINDS = frozenset(  # `--<this>-key` holds a key; `--sort-key`, `--partition-key` a name
    {"api", "access", "secret", "private", "client", "license", "auth", "master"}
)
_ONE_TIME_KINDS = frozenset(  # `TOTP_SEED`, `MFA_CODE`, `SEED_PHRASE`; not `RANDOM_SEED`
    {"otp", "totp", "hotp", "mfa", "2fa", "wallet", "recovery", "backup", "pin", "seed"}
    | {"mnemonic", "pass", "secret"}
)
_ONE_TIME_WORDS = frozenset(  # what follows one of those (R200: SEED_PHRASE, RECOVERY_CODES)
    {"seed", "code", "codes", "phrase", "words"}
)
_FIELD_KEYS = frozenset(  # `<THIS>_KEY` names a field or a public key, not a credential
    {"sort", "partition", "primary", "foreign", "unique", "composite", "hash", "range", "row"}
    | {"shard", "routing", "cache", "group", "lookup", "index", "join", "order", "object"}
    | {"field", "tag", "label", "map", "dedup", "dedupe", "idempotency", "cluster"}
    | {"public", "pub", "publishable", "site", "hot", "shortcut"}
)
_PLAIN_FLAG_WORDS = frozenset(  # the flag names where the value is, or says how long, not what
    {"file", "path", "dir", "folder", "env", "var", "name", "type", "mode", "method", "url"}
    | {"uri", "endpoint", "header", "port", "host", "max", "min", "limit", "count", "ttl"}
    | {"timeout", "expiry", "size", "length", "budget", "no", "num", "number", "total"}
)
_PLAIN_NAME_WORDS = _PLAIN_FLAG_WORDS - {"header"}  # AUTH_HEADER holds one
_AUTH_SETTINGS = frozenset(  # what an auth or cookie setting names besides its secret
    {"region", "provider", "domain", "profile", "version", "strategy", "samesite", "scope"}
    | {"scopes", "user", "username", "email", "issuer", "audience", "realm", "tenant"}
)
_HEADER_FLAGS = frozenset({"-H", "--header", "--headers"})
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # a header's name (RFC 9110)
_HEADER_NAME = re.compile(_TOKEN)
_HEADER = re.compile(rf"(\s*({_TOKEN})\s*[:=]\s*)(.*)", re.S)  # `Name: value`, `Name=value`
_SESSION_NAME = re.compile(rf"{CREDENTIAL_NAME.pattern}|sess|(?<![a-z])sid(?![a-z])", re.I)
_SCHEME = re.compile(r"\s*[A-Za-z]+\s+(?=\S)")  # `Bearer `, `Basic `
_CREDENTIAL_HEADER = re.compile(r"token|key|secret|auth|cookie|passw", re.IGNORECASE)
_PATH = re.compile(r"(?:/|\./|\.\./|~/|[A-Za-z]:\\)")
_PATH_SEPARATOR = re.compile(r"[/\\]")
_MODE_WORD = re.compile(r"[A-Za-z]+")
_SWITCH_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "0", "1", "none", "null"})
_KEY_WORD = re.compile(r"[A-Za-z0-9+_-]+={0,2}")
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+]{20,}")
_KNOWN_KEY = re.compile(  # a known prefix (R190: Stripe's `sk_live_`, `rk_test_`), or a JWT
    r"(?<![A-Za-z0-9])(?:(?:sk-|sk_live_|sk_test_|rk_live_|rk_test_|xox[a-z]-|xapp-|gh[pousr]_"
    r"|github_pat_|glpat-)[A-Za-z0-9_-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
)
_URL_IN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_NAMING_PAIR = re.compile(r"(?i)(?<![A-Za-z0-9])(?:user|username|dbname|host)\s*=\s*([^\s&;'\",]+)")
_CREDENTIAL_PAIR = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key)\s*=\s*([^\s&;'\",]+)"
)
