"""Fixtures: one real PostgreSQL (Debian's `postgresql` package) on loopback per run, a fresh database per test."""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

HOST = "127.0.0.1"
APT_PACKAGE = "postgresql"
USER = "jsm"
START_ATTEMPTS = 3  # a free port can be taken by someone else between our probe and the server's bind
# initdb and the server refuse to run as root; as root the cluster belongs to Debian's postgres user.
SERVER_ACCOUNT = "postgres"

# A throwaway cluster: durability costs fsyncs the tests do not need (PostgreSQL docs, 20.5 "fsync").
CONFIG = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{root}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
"""


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL: where it listens and the password of its one (superuser) role."""

    root: Path
    port: int
    password: str
    host: str = HOST

    def url(self, database: str) -> str:
        """The SQLAlchemy URL jsm-mail is given (JSM_MAIL_DATABASE_URL)."""
        return f"postgresql+psycopg://{USER}:{self.password}@{self.host}:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=USER, password=self.password,
                               dbname="postgres", autocommit=True)


def _binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else the newest under Debian's /usr/lib/postgresql."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _missing(reason: str) -> None:
    """Skip with the reason; in CI (CI=true, as GitHub Actions sets it) the set-up is broken: fail."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a server tool as the cluster's owner: ourselves, or the postgres account when we are root."""
    owner: dict[str, object] = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_ACCOUNT)
        owner = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
                          **owner)  # type: ignore[call-overload]


def _make_root(password: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix="jsm-postgres-"))
    (root / "pwfile").write_text(password + "\n")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            shutil.rmtree(root)
            _missing(f"running as root needs the {SERVER_ACCOUNT!r} account that the Debian package "
                     f"{APT_PACKAGE} creates to own the test cluster")
        shutil.chown(root, SERVER_ACCOUNT, SERVER_ACCOUNT)
        shutil.chown(root / "pwfile", SERVER_ACCOUNT, SERVER_ACCOUNT)
    return root


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL on a free loopback port, started once per run and stopped at teardown."""
    binaries = _binaries()
    if binaries is None:
        _missing(f"PostgreSQL not found (no pg_ctl): install the Debian package {APT_PACKAGE} "
                 "(scripts/setup.sh --test does)")
    assert binaries is not None
    password = secrets.token_hex(12)
    root = _make_root(password)
    data = root / "data"
    try:
        made = _run([str(binaries / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(root / "pwfile"),
                     "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8"], root)
        if made.returncode != 0:
            pytest.fail(f"initdb failed:\n{made.stderr}", pytrace=False)
        for _ in range(START_ATTEMPTS):
            server = PostgresServer(root, _free_port(), password)
            with open(data / "postgresql.conf", "a") as conf:
                conf.write(CONFIG.format(host=HOST, port=server.port, root=root))
            started = _run([str(binaries / "pg_ctl"), "start", "-w", "-t", "30", "-D", str(data),
                            "-l", str(root / "server.log")], root)
            if started.returncode == 0:
                break
        else:
            log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
            pytest.fail(f"PostgreSQL did not start:\n{started.stderr}\n{log[-2000:]}", pytrace=False)
        try:
            yield server
        finally:
            _run([str(binaries / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards, whoever is still connected."""
    name = f"jsm_test_{os.getpid()}_{next(_database_numbers)}"
    with postgres.admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres.url(name)
    finally:
        with postgres.admin() as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # PostgreSQL 13+
