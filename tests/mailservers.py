"""Real mail servers for the tests: Dovecot 2.3 as a user process, aiosmtpd on 127.0.0.1.

Dovecot runs rootless (../shared/notes/wire-protocols-2.md): a temporary configuration, a
passwd-file, a Maildir per user that the test fills by writing message files, plain IMAP with
STARTTLS on one port and implicit TLS on another, both with a self-signed certificate made here
(`SSL_CERT_FILE` points the clients at it). As root it runs as `nobody` through setpriv, since
Dovecot refuses to run its services as root; otherwise as the test's own user.

Without Dovecot the IMAP tests skip saying so, except under STEWARD_CI_STRICT=1, where they fail.

(Over 400 lines: Dovecot's rootless configuration, its start and readiness checks, and
aiosmtpd beside it are one fixture for the mail tests.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
STRICT = os.environ.get("STEWARD_CI_STRICT") == "1"
USER = "me@example.org"
PASSWORD = "s3cret-Pass"
OWNER_ADDRESS = USER


def require_dovecot() -> str:
    """Dovecot's path; skips (or fails under STEWARD_CI_STRICT=1) when it is not installed."""
    if DOVECOT is None:
        message = "dovecot is not installed (Debian: apt-get install dovecot-imapd)"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return DOVECOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` different free ports: held open together while chosen, so the kernel cannot
    hand the same one out twice (CI once got Dovecot's two listeners on one port)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Dovecot:
    """A running Dovecot: ports, the account, and the Maildirs to fill."""

    root: Path
    imap_port: int
    imaps_port: int
    cert: Path
    uid: int
    gid: int
    process: subprocess.Popen[bytes] | None = None
    counter: int = 0

    def maildir(self, user: str = USER, folder: str = "INBOX") -> Path:
        base = self.root / "home" / user / "Maildir"
        path = base if folder == "INBOX" else base / f".{folder}"
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._own(self.root / "home", path)
        return path

    def _own(self, top: Path, folder: Path) -> None:
        """Give the folders from `top` down to a Maildir folder to the mail user (`deliver`
        gives each message): owning the whole tree on every call made 3,000 deliveries 4.5
        million chowns, 37 s of a test."""
        if os.geteuid() != 0:
            return
        chain = [folder / sub for sub in ("cur", "new", "tmp")]
        chain += [folder, *(p for p in folder.parents if p.is_relative_to(top))]
        for path in chain:
            os.chown(path, self.uid, self.gid)

    def deliver(
        self,
        message: bytes | EmailMessage,
        *,
        folder: str = "INBOX",
        seen: bool = False,
        received: float | None = None,
    ) -> Path:
        """Put a message into the Maildir as a delivery agent would (new/ or cur/ with \\Seen).
        `received` sets its arrival time (INTERNALDATE), e.g. two days ago."""
        raw = message if isinstance(message, bytes) else bytes(message)
        box = self.maildir(folder=folder)
        self.counter += 1
        name = f"{int(time.time())}.M{self.counter}P{os.getpid()}_{uuid.uuid4().hex[:8]}.steward"
        target = box / "cur" / f"{name}:2,S" if seen else box / "new" / name
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        if received is not None:
            os.utime(tmp, (received, received))
        if os.geteuid() == 0:
            os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, target)
        return target

    def imap_url(self, *, tls: bool = False, user: str = USER) -> str:
        quoted = user.replace("@", "%40")
        if tls:
            return f"imaps://{quoted}@127.0.0.1:{self.imaps_port}"
        return f"imap://{quoted}@127.0.0.1:{self.imap_port}"

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def _config(d: Dovecot, user_name: str, group_name: str) -> str:
    root = d.root
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user_name}
default_login_user = {user_name}
default_internal_group = {group_name}
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    auto = create
    special_use = \\Archive
  }}
  mailbox Sent {{
    auto = create
    special_use = \\Sent
  }}
  mailbox Sendt {{
    auto = create
    special_use = \\Sent
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {d.imap_port}
  }}
  inet_listener imaps {{
    port = {d.imaps_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={d.uid} gid={d.gid} home={root}/home/%u
}}
"""


@contextmanager
def dovecot_server(users: dict[str, str] | None = None, extra: str = "") -> Iterator[Dovecot]:
    """Start Dovecot for `users` (address -> password), with `extra` configuration lines;
    stops it and removes its files after."""
    binary = require_dovecot()
    users = users or {USER: PASSWORD}
    root = Path(tempfile.mkdtemp(prefix="steward-dovecot-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        account = pwd.getpwnam("nobody")
        uid, gid = account.pw_uid, account.pw_gid
    else:
        uid, gid = os.getuid(), os.getgid()
    user_name = pwd.getpwuid(uid).pw_name
    import grp

    group_name = grp.getgrgid(gid).gr_name
    cert, _ = make_certificate(root)
    d = Dovecot(root, *free_ports(2), cert, uid, gid)
    for sub in ("run", "state", "home"):
        (root / sub).mkdir()
    (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
    (root / "dovecot.conf").write_text(_config(d, user_name, group_name) + extra)
    (root / "dovecot.log").touch()
    for user in users:
        d.maildir(user=user)
    if os.geteuid() == 0:
        for dirpath, _, files in os.walk(root):
            os.chown(dirpath, uid, gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), uid, gid)
        command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    else:
        command = []
    command += [binary, "-F", "-c", str(root / "dovecot.conf")]
    d.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        try:
            _wait_port(d.imap_port)
            _wait_port(d.imaps_port)
        except TimeoutError:
            output = d.process.stdout.read().decode(errors="replace") if d.process.stdout else ""
            d.stop()
            raise RuntimeError(f"dovecot did not start: {output}\n{d.log()}") from None
        yield d
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


def running_dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    """For a test module's fixture: Dovecot, with the clients trusting its certificate."""
    with dovecot_server() as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        yield server


# ------------------------------------------------------------------------------------- SMTP


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class SmtpRecorder:
    """aiosmtpd on 127.0.0.1 recording every message it receives (AUTH without TLS allowed,
    checked against one account)."""

    port: int = 0
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    controller: Controller | None = None
    refusal: str = ""
    """When set, every message is refused with "554 5.7.1 <refusal>" (a server's own words)."""

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.refusal:
            return f"554 5.7.1 {self.refusal}"
        data = envelope.original_content or b""
        self.messages.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos), data))
        return "250 OK"

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth: Any
    ) -> AuthResult:
        login = getattr(auth, "login", b"")
        password = getattr(auth, "password", b"")
        ok = login == USER.encode() and password == PASSWORD.encode()
        if ok:
            self.logins.append(login.decode())
        return AuthResult(success=ok, handled=False)  # a refusal is answered 535

    def start(self) -> None:
        self.port = free_port()
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://{USER.replace('@', '%40')}@127.0.0.1:{self.port}"


def running_smtp() -> Iterator[SmtpRecorder]:
    """For a test module's fixture: the recording SMTP server."""
    server = SmtpRecorder()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------ Steward


def mail_settings(
    dovecot: Dovecot | None, smtp: SmtpRecorder | None, **extra: str
) -> dict[str, str]:
    """The EMAIL_* settings pointing at the test servers (TLS IMAP unless `EMAIL_IMAP_URL` is
    given in `extra`)."""
    values: dict[str, str] = {"EMAIL_PASSWORD": PASSWORD, "EMAIL_FROM": f"Me <{USER}>"}
    if dovecot is not None:
        values["EMAIL_IMAP_URL"] = dovecot.imap_url(tls=True)
    if smtp is not None:
        values["EMAIL_SMTP_URL"] = smtp.url
    return values | extra


def sample_html_mail(uid_hint: str = "q3") -> EmailMessage:
    """An HTML-only message with a tracking image, a script and a PDF attachment."""
    message = EmailMessage()
    message["From"] = "Ann Example <ann@partner.example>"
    message["To"] = USER
    message["Cc"] = "Carl <carl@partner.example>"
    message["Subject"] = "Quarterly report"
    message["Date"] = "Thu, 03 Dec 2026 09:15:00 +0000"
    message["Message-ID"] = f"<{uid_hint}@partner.example>"
    message["References"] = "<earlier@partner.example>"
    message.set_content(
        "<html><head><style>p {color: red}</style><script>alert('pwned')</script></head>"
        "<body><p>Hello,</p><p>The <b>Q3 numbers</b> are attached.</p>"
        "<p><a href='https://partner.example/q3'>Details online</a></p>"
        "<img src='https://tracker.example/pixel.gif' alt='logo'></body></html>",
        subtype="html",
    )
    message.add_attachment(
        b"%PDF-1.4\n" + b"0" * 30_000,
        maintype="application",
        subtype="pdf",
        filename="q3-report.pdf",
    )
    return message


def plain_mail(sender: str, subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = USER
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mail.test>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def received_messages(smtp: SmtpRecorder) -> list[EmailMessage]:
    import email
    import email.policy

    return [
        email.message_from_bytes(m.data, policy=email.policy.default)  # type: ignore[misc]
        for m in smtp.messages
    ]
