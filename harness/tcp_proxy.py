"""A TCP proxy on loopback that a test or a benchmark can cut, restore, pause and resume.

Put between the node and a peer it depends on (PostgreSQL, a sender), it plays the failures
that cannot be played on the shared peer itself: ``cut`` is a stopped server (open connections
closed, new ones refused), ``restore`` starts it again on the same port, and ``pause_after``
holds a connection's upstream bytes after a budget, so a transfer stays in flight for as long
as the test needs.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field

from harness.network import free_port

CHUNK = 1 << 16
POLL_S = 0.05


@dataclass
class _Pair:
    client: socket.socket
    server: socket.socket
    upstream_budget: int | None  # bytes client -> server still allowed while paused
    closed: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; every connection through two threads."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0  # accepted so far
        self._listener: socket.socket | None = None
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._budget: int | None = None

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """As a stopped server: new connections refused, open ones closed."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):  # wakes the accepting thread (close alone won't)
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()

    def restore(self) -> None:
        """Listen again, on the same port."""
        if self._listener is None:
            self.start()

    def pause_after(self, upstream_bytes: int) -> None:
        """Each connection (open or new) forwards at most this many more client bytes, then
        holds the rest until :meth:`resume`."""
        with self._lock:
            self._budget = upstream_bytes
            for pair in self._pairs:
                pair.upstream_budget = upstream_bytes
        self._flowing.clear()

    def resume(self) -> None:
        with self._lock:
            self._budget = None
            for pair in self._pairs:
                pair.upstream_budget = None
        self._flowing.set()

    def stop(self) -> None:
        self.resume()
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed by cut()
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                pair = _Pair(client, server, self._budget)
                self._pairs.append(pair)
                self.connections += 1
            threading.Thread(target=self._pump, args=(pair, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, False), daemon=True).start()

    def _pump(self, pair: _Pair, upstream: bool) -> None:
        source, sink = (pair.client, pair.server) if upstream else (pair.server, pair.client)
        while not pair.closed.is_set():
            allowed = CHUNK
            if upstream:
                with self._lock:
                    budget = pair.upstream_budget
                if budget is not None:
                    if budget <= 0:
                        self._flowing.wait(POLL_S)
                        continue
                    allowed = min(CHUNK, budget)
            try:
                ready, _, _ = select.select([source], [], [], POLL_S)
                if not ready:
                    continue
                data = source.recv(allowed)
                if not data:
                    break
                if upstream:
                    with self._lock:
                        if pair.upstream_budget is not None:
                            pair.upstream_budget -= len(data)
                sink.sendall(data)
            except (OSError, ValueError):  # closed under us
                break
        pair.close()
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
