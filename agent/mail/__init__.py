"""E-mail as an environment: read, search, watch and send one mailbox, under the trust rules.

Modules: `account` (settings: URLs, sender, folders), `imap` (the session interface and search
criteria) with `imap_aio` (aioimaplib, implicit TLS) and `imap_thread` (imapclient in a worker
thread, where STARTTLS is needed), `smtp` (aiosmtplib), `parsed` / `headers` / `reading` (a
message a server holds, however malformed: headers that cannot fail to read, parts counted
before parsing, HTML reduced to text), `message` (new messages and replies), `service` (what
tools and commands use), `watch` (rules, IDLE or polling, notices through the scheduler),
`briefing` (unread mail for the morning briefing), `setup` (built from the settings for the
composition root). Everything read from a mailbox is outside content, whoever sent it.
"""

__all__: list[str] = []
