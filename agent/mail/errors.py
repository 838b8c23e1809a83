"""What the mail package raises on purpose; messages are written for the owner."""

from __future__ import annotations

__all__ = ["MailError", "MailFolderRefused", "MailLoginRefused", "MailUnavailable"]


class MailError(Exception):
    """A mail operation failed in a way the model or the owner should be told about.

    Unless `ours` says the message is Steward's own words (a check of its own), it may quote
    the server (an SMTP or IMAP reply, a folder list): the tools treat it as outside content.
    """

    def __init__(self, message: str, *, ours: bool = False) -> None:
        super().__init__(message)
        self.ours = ours


class MailLoginRefused(MailError):
    """The server refused the account's login (wrong user name or password)."""


class MailUnavailable(MailError):
    """The server could not be reached, dropped the connection or broke the protocol."""


class MailFolderRefused(MailError):
    """The server answered that it will not open a folder (none of that name, or not this
    account's): the connection is fine, so the other folders can still be read."""
