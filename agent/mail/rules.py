"""Mail watch rules: what `/mail watch` takes (`parse_rule`), how a rule reads back
(`describe_rule`), whether a mail matches one (`matches`), and the notice a match sends
(`notice_text`). The watcher that applies them is `watch.py`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses

from agent.cards import plain_text
from agent.mail.header_cap import CUT_NOTE
from agent.mail.message import ParsedMail
from memory.mail import WatchRule

__all__ = ["RuleSpec", "describe_rule", "matches", "notice_text", "parse_rule", "sender_named"]


@dataclass(frozen=True)
class RuleSpec:
    kind: str
    value: str


_UNREAD = re.compile(
    r"^(anything\s+)?unread(\s+mail)?\s+(older\s+than\s+)?(a|one|1)\s+day(\s+old)?$", re.I
)
_DOMAIN = re.compile(r"^@?([a-z0-9-]+\.)+[a-z]{2,}$", re.I)
_ADDRESS = re.compile(r"^[^@\s]+@([a-z0-9-]+\.)+[a-z]{2,}$", re.I)


def parse_rule(text: str) -> RuleSpec:
    """`from boss@corp.example`, `from corp.example`, `subject invoice overdue`,
    `unread older than a day`. ValueError says what is wrong."""
    words = text.strip()
    if _UNREAD.match(words) or words.lower() in ("unread", "stale"):
        return RuleSpec("unread_older", "1 day")
    head, _, rest = words.partition(" ")
    rest = rest.strip()
    if head.lower() == "from" and rest:
        if _ADDRESS.match(rest):
            return RuleSpec("from", rest.lower())
        if _DOMAIN.match(rest):
            return RuleSpec("from", "@" + rest.lstrip("@").lower())
        raise ValueError(f"“{rest}” is neither an address nor a domain")
    if head.lower() == "subject" and rest:
        return RuleSpec("subject", " ".join(rest.split()))
    raise ValueError(
        "a rule is `from <address or domain>`, `subject <words>` or `unread older than a day`"
    )


def describe_rule(rule: WatchRule | RuleSpec) -> str:
    if rule.kind == "from":
        return f"from {rule.value.lstrip('@')}" + (
            " (any address)" if rule.value.startswith("@") else ""
        )
    if rule.kind == "subject":
        return f"subject has “{rule.value}”"
    return "anything unread older than a day"


def matches(rule: WatchRule | RuleSpec, mail: ParsedMail) -> bool:
    if rule.kind == "from":
        address = mail.sender_address
        if rule.value.startswith("@"):
            domain = address.rsplit("@", 1)[-1]
            wanted = rule.value[1:]
            return bool(address) and (domain == wanted or domain.endswith("." + wanted))
        return address == rule.value
    if rule.kind == "subject":  # whole words, a word's endings allowed ("tax" not in "syntax")
        return all(
            re.search(rf"(?<!\w){re.escape(word)}", mail.subject, re.IGNORECASE)
            for word in rule.value.split()
        )
    return False


def notice_text(mail: ParsedMail, *, stale: bool, size: int) -> str:
    # the sender writes all three: no Markdown or invisible characters into Steward's message
    who = sender_named(mail) or "(no sender)"
    subject = plain_text(mail.subject) or "(no subject)"
    gist = plain_text(mail.gist()) if mail.text else f"(a {size // 1_000_000 or 1} MB message)"
    lead = "Still unread after a day" if stale else "New mail"
    cut = f"\n(Steward read only part of it: {CUT_NOTE}.)" if CUT_NOTE in mail.problems else ""
    # the gist is the sender's words: shown as a quote, never as a line of Steward's own
    return f"📧 {lead} from {who}: “{subject}”" + (f"\n> {gist}" if gist else "") + cut


def sender_named(mail: ParsedMail, shown: Callable[[str, int], str] = plain_text) -> str:
    """Who sent it, as the notice names them: the name they chose, cut to 64 characters and
    quoted where it looks like an address, then the address it came from, never cut (R218: a
    name of "The Boss <boss@corp.example>" and 180 spaces pushed the real address past the
    notice's 200 characters, so it read as the boss's). `shown(text, limit)` makes the
    sender's words safe where they go: Markdown escaped in a notice, one plain line on a
    reply's approval card (R241: the card cut From at 50 characters, the same way)."""
    address = mail.sender_address
    if not address:
        return shown(mail.sender, 200)
    try:
        [(name, _)] = getaddresses([mail.sender])[:1] or [("", "")]
    except ValueError:
        name = ""
    name = shown(" ".join(name.replace("“", "").replace("”", "").split()), 64)
    if not _plain_name(name):
        name = f"“{name}”"  # R219, R220: an address in full-width or look-alike signs
    address = shown(address, 320)
    return f"{name} <{address}>" if name else address


def _plain_name(name: str) -> bool:
    """Whether a name is only letters, digits, spaces and a name's punctuation ("O'Brien,
    Pat", "José García-Núñez"), so it cannot look like an address: any other sign (<, @, their
    full-width and look-alike forms such as ⓐ) and the name is shown quoted."""
    allowed = " .,'’-&()"
    signs = all(char in allowed or unicodedata.category(char)[0] in "LMN" for char in name)
    return signs and not any(mark in unicodedata.normalize("NFKC", name) for mark in "<>@")
