"""Fixtures: one real Dovecot 2.3 (IMAP, IMAPS, POP3, POP3S) on loopback per run, a fresh user per test."""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from plugin.domain import Link, MailProtocol, Secret, Security

HOST = "127.0.0.1"
APT_PACKAGES = "dovecot-imapd dovecot-pop3d openssl"
SEARCH_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))
START_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken by someone else between our probe and Dovecot's bind

# Settings that differ by who runs the tests (see shared/research/dovecot.md, gotchas 1 and 2).
AS_ROOT = """\
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
first_valid_gid = 1
"""
AS_USER = """\
default_login_user = nobody
default_internal_user = nobody
default_internal_group = nogroup
"""
CONFIG = """\
instance_name = jsmmail-test-{imap}
protocols = imap pop3
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/log/dovecot.log
info_log_path = {root}/log/dovecot.log
debug_log_path = {root}/log/dovecot.log
auth_mechanisms = plain login xoauth2 oauthbearer
disable_plaintext_auth = no
auth_failure_delay = 0
mail_fsync = never
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
mail_location = maildir:{root}/mail/%u
{identity}
# Any user name logs in, with a password only this run knows. Not a passwd-file: Dovecot re-reads
# one at most once a second, so a user added right after another login would be unknown.
passdb {{
  driver = static
  mechanisms = plain login
  args = password={password_secret}-%n
}}
# XOAUTH2 / OAUTHBEARER: Dovecot asks the token introspection endpoint (RFC 7662) of the test run.
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
userdb {{
  driver = static
  args = home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  {login_chroot}
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  {login_chroot}
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
# After a failed login Dovecot delays every login from that IP by up to 15 s (auth penalty);
# without the listener it cannot count failures, so wrong-password tests do not slow the rest.
service anvil {{
  {anvil_chroot}
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

# doc.dovecot.org/2.3/configuration_manual/authentication/oauth2 (the WSO2 example): POST token=...,
# the JSON answer must say active=true and name the login user.
OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


class TokenIntrospection:
    """The introspection endpoint Dovecot asks about each XOAUTH2 token; a test says which tokens are whose."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.url = server.url_for("/introspect")
        self.owner: Callable[[str], str | None] = lambda token: None
        self.asked: list[str] = []
        self.violations: list[str] = []
        server.expect_request("/introspect").respond_with_handler(self._answer)

    def _answer(self, request: Request) -> Response:
        # RFC 7662 2.1: POST, application/x-www-form-urlencoded, parameter "token".
        token = request.form.get("token", "")
        if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded" or not token:
            self.violations.append(f"{request.method} {request.mimetype} without a token form field")
            return Response("{}", 400, content_type="application/json")
        self.asked.append(token)
        username = self.owner(token)
        body = {"active": "true", "username": username} if username else {"active": "false"}
        return Response(json.dumps(body), 200, content_type="application/json")


@dataclass(frozen=True)
class DovecotServer:
    """A running Dovecot: where it listens and the certificate clients should trust."""

    root: Path
    host: str
    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    cafile: str
    password_secret: str
    introspection: TokenIntrospection | None = None

    def password_for(self, username: str) -> str:
        """The password that logs `username` in: any name is a user, and gets an empty Maildir."""
        return f"{self.password_secret}-{username.partition('@')[0]}"


@dataclass(frozen=True)
class MailAccount:
    """One mailbox user on the test Dovecot, with helpers that read and write it directly."""

    server: DovecotServer
    username: str
    password: str

    @property
    def address(self) -> str:
        return self.username

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def imap_port(self) -> int:
        return self.server.imap_port

    @property
    def imaps_port(self) -> int:
        return self.server.imaps_port

    @property
    def pop3_port(self) -> int:
        return self.server.pop3_port

    @property
    def pop3s_port(self) -> int:
        return self.server.pop3s_port

    @property
    def cafile(self) -> str:
        return self.server.cafile

    def append(self, eml: bytes, flags: tuple[str, ...] = ()) -> int:
        """APPEND a raw mail to INBOX and return its UID."""
        with self.client(readonly=False) as client:
            response = client.append("INBOX", eml, flags=flags)
        # RFC 4315 (UIDPLUS): "[APPENDUID <uidvalidity> <uid>] ..."
        match = re.search(rb"\[APPENDUID \d+ (\d+)\]", response)
        assert match, f"no APPENDUID in {response!r}"
        return int(match.group(1))

    def messages(self) -> list[tuple[int, set[str], bytes]]:
        """Every mail in INBOX as (uid, flags, raw bytes), read without changing anything."""
        with self.client() as client:
            uids = client.search("ALL")
            if not uids:
                return []
            fetched = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
        return [(uid, _stored_flags(fetched[uid][b"FLAGS"]), fetched[uid][b"BODY[]"]) for uid in sorted(fetched)]

    def flags(self, uid: int) -> set[str]:
        """The flags and keywords stored on one mail."""
        with self.client() as client:
            fetched = client.fetch([uid], ["FLAGS"])
        return _stored_flags(fetched[uid][b"FLAGS"])

    def link(self, protocol: str = "imap", security: str = "none", **overrides: Any) -> Link:
        """A Link to this account over the given protocol and security; fields can be overridden."""
        mail_protocol, link_security = MailProtocol(protocol), Security(security)
        ports = {
            (MailProtocol.IMAP, True): self.imaps_port,
            (MailProtocol.IMAP, False): self.imap_port,
            (MailProtocol.POP3, True): self.pop3s_port,
            (MailProtocol.POP3, False): self.pop3_port,
        }
        link = Link(
            id=1,
            name="test",
            protocol=mail_protocol,
            host=self.host,
            port=ports[mail_protocol, link_security is Security.SSL],
            security=link_security,
            username=self.username,
            password=Secret(self.password),
            folder="INBOX",
            service_desk_id="1",
            request_type_id="10",
            address=self.address,
        )
        return dataclasses.replace(link, **overrides)

    def client(self, readonly: bool = True) -> IMAPClient:
        """A logged-in client with INBOX selected; read-only (EXAMINE) unless told otherwise."""
        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=10)
        client.login(self.username, self.password)
        client.select_folder("INBOX", readonly=readonly)
        return client


def _stored_flags(flags: tuple[bytes, ...]) -> set[str]:
    """FETCH FLAGS as text, without the per-session \\Recent."""
    # RFC 3501 2.3.2: \Recent belongs to the session that first saw the mail, not to the mail.
    return {flag.decode() for flag in flags} - {"\\Recent"}


def _free_ports(count: int) -> list[int]:
    """Ports the kernel calls free right now, all distinct (held open together while chosen)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((HOST, 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def make_certificate(openssl: str, directory: Path) -> Path:
    """A self-signed certificate for localhost and 127.0.0.1; key.pem and cert.pem in `directory`."""
    subprocess.run(
        # An EC key is made in milliseconds, where RSA takes a noticeable part of a second.
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=localhost", "-addext", f"subjectAltName=DNS:localhost,IP:{HOST}",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
        check=True, capture_output=True,
    )
    return directory / "cert.pem"


def openssl_path() -> str:
    """The openssl binary, or a failed test naming the packages to install."""
    path = shutil.which("openssl", path=SEARCH_PATH)
    if path is None:
        pytest.fail(f"openssl not found: install the Debian packages {APT_PACKAGES}", pytrace=False)
    return path


def _make_root(openssl: str) -> Path:
    """A temp dir with the layout and certificate Dovecot expects."""
    root = Path(tempfile.mkdtemp(prefix="jsm-dovecot-"))
    root.chmod(0o755)  # mail processes run as nobody and must reach mail/ and home/
    for sub in ("run", "state", "log", "mail", "home"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        for sub in ("mail", "home"):
            shutil.chown(root / sub, "nobody", "nogroup")
    make_certificate(openssl, root)
    return root


def _write_config(root: Path, ports: list[int], password_secret: str, introspection_url: str) -> Path:
    """Write dovecot.conf for these ports (imap, imaps, pop3, pop3s) and return its path."""
    imap, imaps, pop3, pop3s = ports
    as_root = os.geteuid() == 0
    (root / "dovecot-oauth2.conf.ext").write_text(OAUTH2_CONFIG.format(url=introspection_url))
    conf = root / "dovecot.conf"
    conf.write_text(CONFIG.format(
        host=HOST, root=root, imap=imap, imaps=imaps, pop3=pop3, pop3s=pop3s, password_secret=password_secret,
        identity=AS_ROOT if as_root else AS_USER,
        login_chroot="" if as_root else "chroot =",
        anvil_chroot="" if as_root else "chroot =",
    ))
    return conf


def _greets(port: int, greeting: bytes) -> bool:
    """Whether something on the port answers with the protocol's greeting."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as conn:
            return conn.recv(64).startswith(greeting)
    except OSError:
        return False


def _wait_until_ready(proc: subprocess.Popen[bytes], server: DovecotServer) -> bool:
    """Poll both plain ports for a greeting; False if Dovecot exited or never answered."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _greets(server.imap_port, b"* OK") and _greets(server.pop3_port, b"+OK"):
            return True
        try:
            proc.wait(timeout=0.02)  # doubles as the poll interval and notices an early exit
            return False
        except subprocess.TimeoutExpired:
            continue
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master, which takes its children along (about 1 s), and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _log_tail(root: Path) -> str:
    """The last lines Dovecot wrote, for a failure message."""
    log = root / "log" / "dovecot.log"
    stderr = root / "log" / "stderr.log"
    text = "".join(path.read_text(errors="replace") for path in (stderr, log) if path.exists())
    return "\n".join(text.splitlines()[-20:])


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A real Dovecot on free loopback ports, started once per run and stopped at teardown."""
    dovecot_bin = shutil.which("dovecot", path=SEARCH_PATH)
    if dovecot_bin is None:
        pytest.fail(f"dovecot not found: install the Debian packages {APT_PACKAGES}", pytrace=False)
    root = _make_root(openssl_path())
    password_secret = secrets.token_hex(8)
    introspection_server = HTTPServer(host=HOST, port=0)
    introspection_server.start()
    introspection = TokenIntrospection(introspection_server)
    try:
        for _ in range(START_ATTEMPTS):
            imap, imaps, pop3, pop3s = ports = _free_ports(4)
            server = DovecotServer(root, HOST, imap, imaps, pop3, pop3s, cafile=str(root / "cert.pem"),
                                   password_secret=password_secret, introspection=introspection)
            conf = _write_config(root, ports, password_secret, introspection.url)
            with open(root / "log" / "stderr.log", "ab") as stderr:
                proc = subprocess.Popen([dovecot_bin, "-F", "-c", str(conf)], stderr=stderr)
            if _wait_until_ready(proc, server):
                break
            _stop(proc)
        else:
            pytest.fail(f"Dovecot did not start; last log lines:\n{_log_tail(root)}", pytrace=False)
        try:
            yield server
        finally:
            _stop(proc)
    finally:
        introspection_server.stop()
        shutil.rmtree(root, ignore_errors=True)


_user_numbers = itertools.count(1)


@pytest.fixture
def mail_account(dovecot: DovecotServer) -> MailAccount:
    """A fresh, empty mailbox user for one test."""
    username = f"u{next(_user_numbers)}@example.test"
    return MailAccount(dovecot, username, dovecot.password_for(username))


@pytest.fixture
def token_introspection(dovecot: DovecotServer) -> Iterator[TokenIntrospection]:
    """Dovecot's token introspection endpoint for one test: set `.owner` (token -> user name or None)."""
    introspection = dovecot.introspection
    assert introspection is not None
    introspection.asked.clear()
    yield introspection
    introspection.owner = lambda token: None
    violations, introspection.violations = introspection.violations, []
    introspection.server.check_handler_errors()
    assert not violations, "Dovecot asked the introspection endpoint in an unexpected way:\n" + "\n".join(violations)


@pytest.fixture(scope="session")
def untrusted_cafile(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A certificate for the same host names that Dovecot does not use: TLS must refuse it."""
    return str(make_certificate(openssl_path(), tmp_path_factory.mktemp("untrusted")))
