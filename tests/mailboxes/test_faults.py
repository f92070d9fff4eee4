"""A mailbox misbehaving (real Dovecot): connections cut mid-fetch and mid-label, UIDVALIDITY changed,
mail expunged by a person between search and fetch, Dovecot restarted during a poll, a read-only folder,
POP3 cut mid-RETR and before QUIT. Each: a clear error, nothing lost, nothing handled twice."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from imapclient import IMAPClient

from plugin.cli import EXIT_MAILBOX_UNREACHABLE
from plugin.domain import MailProtocol, Secret
from tests.conftest import jsm_mail
from tests.fakes import dovecot as dovecot_fake
from tests.fakes.tcp_proxy import TcpProxy, proxy_to

SEEN, PROCESSED = "\\Seen", "jsm-processed"
FOLDER = "Support"


@pytest.fixture
def imap_proxy(dovecot) -> Iterator[TcpProxy]:
    yield from proxy_to(dovecot.imap_port)


@pytest.fixture
def pop3_proxy(dovecot) -> Iterator[TcpProxy]:
    yield from proxy_to(dovecot.pop3_port)


def customer_mail(n: int, body_bytes: int = 0) -> tuple[str, bytes]:
    """(token in its text, bytes); `body_bytes` of padding make a mail whose fetch takes many reads."""
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.org>"
    msg["To"] = "support@example.test"
    msg["Subject"] = f"Printer {n} jams"
    msg["Message-ID"] = make_msgid(idstring=f"mbfault-{n}", domain="example.org")
    token = f"tok{n:03d}"
    padding = "\n".join("Paper path log line." for _ in range(body_bytes // 21))
    msg.set_content(f"Paper jam {token} on floor 2.\n{padding}")
    return token, msg.as_bytes()


def fill(mail_account, count: int, first: int = 0, big: bool = True) -> list[str]:
    tokens = []
    for n in range(first, first + count):
        token, data = customer_mail(n, 60_000 if big and n == first else 0)
        mail_account.append(data)
        tokens.append(token)
    return tokens


def in_jira(fake_jira) -> Counter[str]:
    return Counter(word.rstrip(".") for r in fake_jira.requests for word in r.description.split()
                   if word.startswith("tok"))


def assert_once(fake_jira, tokens: list[str]) -> None:
    """Each mail's request in Jira exactly once, and no other request."""
    assert in_jira(fake_jira) == dict.fromkeys(tokens, 1)
    assert len(fake_jira.requests) == len(tokens)


def all_labelled(mail_account) -> bool:
    return all({SEEN, PROCESSED} <= flags for _, flags, _ in mail_account.messages())


# ----------------------------------------------------------------------------------------------- IMAP


def test_connection_cut_mid_fetch_is_an_unreachable_mailbox_and_loses_nothing(
        service, env, mail_account, fake_jira, imap_proxy):
    tokens = fill(mail_account, 3)
    service.relink(port=imap_proxy.port)
    imap_proxy.cut_next(b"BODY.PEEK[]", after_reply_bytes=20_000)  # the big first mail, a third through

    cut = jsm_mail(env, "poll", "--once")

    assert imap_proxy.done == [b"BODY.PEEK[]"]
    assert cut.returncode == EXIT_MAILBOX_UNREACHABLE
    assert "mailbox not reached" in cut.stdout and "could not fetch mail 1" in cut.stdout
    assert "connection" in cut.stdout and "lost" in cut.stdout
    assert fake_jira.requests == [] and not any(f for _, f, _ in mail_account.messages())
    [error] = service.store.error_log()
    assert "could not fetch mail 1" in error.summary

    again = jsm_mail(env, "poll", "--once")

    assert again.returncode == 0, again.stdout + again.stderr
    assert_once(fake_jira, tokens) and all_labelled(mail_account)


def test_connection_cut_while_labelling_labels_later_without_a_second_request(
        service, mail_account, fake_jira, imap_proxy):
    tokens = fill(mail_account, 3, big=False)
    service.relink(port=imap_proxy.port)
    imap_proxy.cut_next(b"STORE")  # Jira has the first request; the label never reaches Dovecot

    first = service.poll()

    assert imap_proxy.done == [b"STORE"]
    assert len(fake_jira.requests) == 1 and not any(f for _, f, _ in mail_account.messages())
    assert first.unreachable and "could not label mail 1" in (first.error or "")
    assert first.outcomes == {}  # the round ended at the lost connection

    service.poll()

    assert_once(fake_jira, tokens) and all_labelled(mail_account)
    assert [e.outcome for e in service.log()] == ["created"] * 3  # no "waiting-retry" row after "created"
    [error] = service.store.error_log()
    assert "could not label mail 1" in error.summary and "lost" in error.summary


def test_uidvalidity_change_neither_skips_nor_repeats_mail(service, mail_account, fake_jira):
    with mail_account.client(readonly=False) as client:
        client.create_folder(FOLDER)
    service.relink(folder=FOLDER)
    old = [customer_mail(n) for n in range(3)]
    for _, data in old:
        _append(mail_account, FOLDER, data)
    service.poll()
    uidvalidity = _uidvalidity(mail_account, FOLDER)

    # The folder is rebuilt (a restore, a migration): new UIDVALIDITY, the old mails again without
    # our labels, under UIDs that now name other mails, and two new ones first.
    with mail_account.client(readonly=False) as client:
        client.delete_folder(FOLDER)
        client.create_folder(FOLDER)
    new = [customer_mail(n) for n in range(3, 5)]
    for _, data in [*new, *old]:
        _append(mail_account, FOLDER, data)
    assert _uidvalidity(mail_account, FOLDER) != uidvalidity

    report = service.poll()

    assert_once(fake_jira, [t for t, _ in old + new])
    assert report.outcomes == {"created": 5}  # the old three as copies of what was handled, labelled like it
    assert all({SEEN, PROCESSED} <= flags for flags in _flags(mail_account, FOLDER).values())


def test_mail_expunged_by_a_person_between_search_and_fetch_is_skipped_and_the_rest_goes_on(
        service, env, mail_account, fake_jira, imap_proxy):
    tokens = fill(mail_account, 3, big=False)
    service.relink(port=imap_proxy.port)

    def a_person_deletes_mail_1() -> None:
        with mail_account.client(readonly=False) as person:
            person.delete_messages([1])
            person.expunge()

    imap_proxy.before(b"BODY.PEEK[]", a_person_deletes_mail_1)

    result = jsm_mail(env, "poll", "--once")

    assert imap_proxy.done == [b"BODY.PEEK[]"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mailbox not reached" not in result.stdout
    assert in_jira(fake_jira) == dict.fromkeys(tokens[1:], 1)  # the deleted one is not made from a stale copy
    assert all_labelled(mail_account) and len(mail_account.messages()) == 2
    assert "internal error" not in result.stderr and service.store.error_log() == []
    assert "skipped link=test uid=1: mail 1 is no longer in INBOX" in result.stderr


def test_dovecot_restarted_during_a_poll(service, env, fake_jira, own_dovecot):
    server, restart = own_dovecot
    account = dovecot_fake.MailAccount(server, "restart@example.test", server.password_for("restart@example.test"))
    tokens = fill(account, 4, big=False)
    proxy_iter = proxy_to(server.imap_port)
    proxy = next(proxy_iter)
    try:
        service.relink(host=server.host, port=proxy.port, username=account.username,
                       password=Secret(account.password))
        proxy.before(b"BODY.PEEK[]", lambda: None)
        proxy.before(b"BODY.PEEK[]", restart)  # Dovecot goes down and comes back as the second mail is fetched

        during = jsm_mail(env, "poll", "--once")

        assert proxy.done == [b"BODY.PEEK[]", b"BODY.PEEK[]"]
        assert during.returncode == EXIT_MAILBOX_UNREACHABLE, during.stdout + during.stderr
        assert "mailbox not reached" in during.stdout and "could not fetch mail 2" in during.stdout
        assert in_jira(fake_jira) == {tokens[0]: 1}

        after = jsm_mail(env, "poll", "--once")

        assert after.returncode == 0, after.stdout + after.stderr
        assert_once(fake_jira, tokens) and all_labelled(account)
    finally:
        next(proxy_iter, None)


def test_read_only_folder_is_a_clear_error_before_any_mail_reaches_jira(
        service, env, mail_account, fake_jira, dovecot):
    tokens = fill(mail_account, 2, big=False)
    cur = Path(dovecot.root) / "mail" / mail_account.username / "cur"
    mode = cur.stat().st_mode
    cur.chmod(0o555)  # Dovecot opens a Maildir whose cur/ it cannot write as [READ-ONLY]
    try:
        refused = jsm_mail(env, "poll", "--once")
        refused_again = jsm_mail(env, "poll", "--once")
    finally:
        cur.chmod(mode)

    for result in (refused, refused_again):
        assert result.returncode == EXIT_MAILBOX_UNREACHABLE
        assert "read-only" in result.stdout and "INBOX" in result.stdout
    assert fake_jira.requests == []
    assert not any(f for _, f, _ in mail_account.messages())
    [error] = service.store.error_log()
    assert "read-only" in error.summary and error.count == 2

    fixed = jsm_mail(env, "poll", "--once")

    assert fixed.returncode == 0
    assert_once(fake_jira, tokens) and all_labelled(mail_account)


def test_keywords_refused_by_acl_each_mail_once_in_jira_and_a_clear_error(service, env, fake_jira, acl_dovecot):
    account = dovecot_fake.MailAccount(acl_dovecot, "acl@example.test", acl_dovecot.password_for("acl@example.test"))
    tokens = fill(account, 3, big=False)
    service.relink(host=acl_dovecot.host, port=acl_dovecot.imap_port, username=account.username,
                   password=Secret(account.password))

    rounds = [jsm_mail(env, "poll", "--once") for _ in range(4)]

    # Dovecot keeps \Seen and drops the keyword without an error (RFC 4314 4); the mail is in Jira by then.
    assert [r.returncode for r in rounds] == [EXIT_MAILBOX_UNREACHABLE] * 3 + [0]
    assert all("did not keep the label jsm-processed" in r.stdout for r in rounds[:3])
    assert_once(fake_jira, tokens)
    assert [f for _, f, _ in account.messages()] == [{SEEN}] * 3  # read, so never listed again
    [error] = service.store.error_log()
    assert "did not keep the label jsm-processed" in error.summary and error.count == 3


# ----------------------------------------------------------------------------------------------- POP3


def test_pop3_cut_mid_retr_deletes_nothing_and_loses_nothing(service, env, mail_account, fake_jira, pop3_proxy):
    tokens = fill(mail_account, 3)
    service.relink(protocol=MailProtocol.POP3, port=pop3_proxy.port)
    pop3_proxy.cut_next(b"RETR", after_reply_bytes=20_000)

    cut = jsm_mail(env, "poll", "--once")

    assert pop3_proxy.done == [b"RETR"]
    assert cut.returncode == EXIT_MAILBOX_UNREACHABLE and "could not fetch mail" in cut.stdout
    assert fake_jira.requests == [] and len(mail_account.messages()) == 3

    again = jsm_mail(env, "poll", "--once")

    assert again.returncode == 0, again.stdout + again.stderr
    assert_once(fake_jira, tokens)
    assert mail_account.messages() == []  # deleted at QUIT, after Jira had each one


def test_pop3_cut_before_quit_keeps_the_mail_and_creates_nothing_twice(service, mail_account, fake_jira,
                                                                        pop3_proxy):
    tokens = fill(mail_account, 3, big=False)
    service.relink(protocol=MailProtocol.POP3, port=pop3_proxy.port)
    pop3_proxy.cut_next(b"QUIT")  # the DELE marks are never committed (RFC 1939 6)

    service.poll()

    assert pop3_proxy.done == [b"QUIT"] and len(mail_account.messages()) == 3
    assert len(fake_jira.requests) == 3

    service.poll()

    assert_once(fake_jira, tokens) and mail_account.messages() == []
    assert [e.outcome for e in service.log()].count("created") == 3


# ----------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def own_dovecot() -> Iterator[tuple[dovecot_fake.DovecotServer, Callable[[], None]]]:
    """A Dovecot of this test alone, so that it can be restarted; (server, restart)."""
    yield from _own_dovecot("")


@pytest.fixture
def acl_dovecot() -> Iterator[dovecot_fake.DovecotServer]:
    """A Dovecot whose INBOX owners may look, read, mark read and add mail, but store no other flag
    or keyword (RFC 4314 rights "lrsi", no "w")."""
    yield from (server for server, _ in _own_dovecot("mail_plugins = acl\nplugin {{\n  acl = vfile:{root}/acl\n}}\n",
                                                      acl="INBOX owner lrsi\n"))


def _own_dovecot(extra: str, acl: str = "") -> Iterator[tuple[dovecot_fake.DovecotServer, Callable[[], None]]]:
    binary = shutil.which("dovecot", path=dovecot_fake.SEARCH_PATH)
    assert binary is not None
    root = dovecot_fake._make_root(dovecot_fake.openssl_path())
    ports = dovecot_fake._free_ports(4)
    secret = "own-secret"
    server = dovecot_fake.DovecotServer(root, dovecot_fake.HOST, *ports, cafile=str(root / "cert.pem"),
                                        password_secret=secret)
    conf = dovecot_fake._write_config(root, ports, secret, "http://127.0.0.1:9/introspect")
    (root / "acl").write_text(acl)
    (root / "acl").chmod(0o644)  # read by the mail processes, which run as another user, whatever the umask
    with conf.open("a") as config:
        config.write(extra.format(root=root))
    running: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        with open(root / "log" / "stderr.log", "ab") as stderr:
            running.append(subprocess.Popen([binary, "-F", "-c", str(conf)], stderr=stderr))
        assert dovecot_fake._wait_until_ready(running[-1], server), dovecot_fake._log_tail(root)

    def restart() -> None:
        """Stop Dovecot with the processes serving its clients (shutdown_clients), and start it again."""
        serving = _descendants(running[-1].pid)
        dovecot_fake._stop(running[-1])
        for pid in serving:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        start()

    start()
    try:
        yield server, restart
    finally:
        dovecot_fake._stop(running[-1])
        shutil.rmtree(root, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    """The processes started under this one (Linux /proc)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return [p for child in children for p in (child, *_descendants(child))]


def _append(mail_account, folder: str, data: bytes) -> None:
    with mail_account.client(readonly=False) as client:
        client.append(folder, data)


def _uidvalidity(mail_account, folder: str) -> int:
    with mail_account.client() as client:
        return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])


def _flags(mail_account, folder: str) -> dict[int, set[str]]:
    client = IMAPClient(mail_account.host, port=mail_account.imap_port, ssl=False, timeout=10)
    with client:
        client.login(mail_account.username, mail_account.password)
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["FLAGS"])
    return {uid: {f.decode() for f in data[b"FLAGS"]} - {"\\Recent"} for uid, data in fetched.items()}

