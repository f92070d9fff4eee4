"""Fixture: a TCP proxy on loopback in front of a real server, that cuts a connection when told to."""
from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

HOST = "127.0.0.1"
CHUNK = 1024  # small reads, so a cut lands within a few kB of where the test asked


@dataclass
class Cut:
    """Where the next connection that meets it is cut: when the client sends `on` (before it reaches
    the server), or once `after_reply_bytes` of the server's answer to `on` have passed."""

    on: bytes
    after_reply_bytes: int | None = None
    action: Callable[[], None] | None = None  # instead of cutting: do this, then pass the command on


@dataclass
class TcpProxy:
    """Forwards 127.0.0.1:port to the target; `cut_next` drops one connection at a chosen moment."""

    target_port: int
    port: int = 0
    cuts: list[Cut] = field(default_factory=list)
    done: list[bytes] = field(default_factory=list)  # the cuts that happened, by their trigger
    _listener: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cut_next(self, on: bytes, after_reply_bytes: int | None = None) -> None:
        with self._lock:
            self.cuts.append(Cut(on, after_reply_bytes))

    def before(self, on: bytes, action: Callable[[], None]) -> None:
        """When a client next sends `on`, run `action` (a second client's work) before the server sees it."""
        with self._lock:
            self.cuts.append(Cut(on, action=action))

    def start(self) -> None:
        listener = socket.create_server((HOST, self.port))
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((HOST, self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server on this thread, server to client on another; either side's end closes both."""
        armed: list[tuple[Cut, int]] = []  # a cut whose trigger went up, and the reply bytes left
        closed = threading.Event()

        def close() -> None:
            closed.set()
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

        def downstream() -> None:
            try:
                while data := server.recv(CHUNK):
                    if armed:
                        cut, left = armed[0]
                        if left <= len(data):
                            client.sendall(data[:left])
                            self.done.append(cut.on)
                            close()
                            return
                        armed[0] = (cut, left - len(data))
                    client.sendall(data)
            except OSError:
                pass
            close()

        threading.Thread(target=downstream, daemon=True).start()
        try:
            while data := client.recv(CHUNK):
                cut = self._take(data)
                if cut is not None and cut.action is not None:
                    cut.action()
                    self.done.append(cut.on)
                    cut = None
                if cut is not None and cut.after_reply_bytes is None:
                    self.done.append(cut.on)
                    break
                if cut is not None:
                    armed.append((cut, cut.after_reply_bytes or 0))
                server.sendall(data)
        except OSError:
            pass
        if not closed.is_set():
            close()

    def _take(self, data: bytes) -> Cut | None:
        with self._lock:
            cut = next((c for c in self.cuts if c.on in data), None)
            if cut is not None:
                self.cuts.remove(cut)
            return cut


def proxy_to(port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def imap_proxy(dovecot) -> Iterator[TcpProxy]:
    """A cutting proxy in front of the test Dovecot's plain IMAP port."""
    yield from proxy_to(dovecot.imap_port)


@pytest.fixture
def pop3_proxy(dovecot) -> Iterator[TcpProxy]:
    """A cutting proxy in front of the test Dovecot's plain POP3 port."""
    yield from proxy_to(dovecot.pop3_port)
