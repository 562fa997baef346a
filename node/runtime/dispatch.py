"""Supervisor side of connection hand-over: accept on the port, give each connection to the
receiver process with the fewest open associations.

Python receivers are bound by one interpreter each; several processes use several cores.
Kernel SO_REUSEPORT hashing spreads connections blindly (two of four associations often land
on one process); counting open connections per receiver balances them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from node.runtime.handover import CLOSED, READY

logger = logging.getLogger(__name__)

ACCEPT_POLL_S = 0.5


@dataclass
class Slot:
    """One receiver process as the dispatcher sees it."""

    channel: socket.socket
    active: int = 0
    alive: bool = True
    order: int = field(default=0)
    ready: threading.Event = field(default_factory=threading.Event)


class Dispatcher:
    def __init__(
        self, host: str, port: int, backlog: int = 128, plain_ports: tuple[int, ...] = ()
    ) -> None:
        """``port``: the DICOM port; ``plain_ports``: plain ones beside a TLS port (the
        receiver tells them apart by the accepted socket's local port)."""
        self.listeners: list[socket.socket] = []
        try:
            for each in (port, *plain_ports):
                self.listeners.append(_bound(host, each))
        except OSError:
            for listener in self.listeners:
                listener.close()
            raise
        self.backlog = backlog
        self.slots: list[Slot] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ticket = itertools.count()
        self._selector = selectors.DefaultSelector()
        self._threads: list[threading.Thread] = []

    def add_receiver(self) -> tuple[Slot, socket.socket]:
        """A new slot and the socket to hand to its receiver process."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        slot = Slot(channel=ours, order=next(self._ticket))
        with self._lock:
            self.slots.append(slot)
            self._selector.register(ours, selectors.EVENT_READ, slot)
        return slot, theirs

    def remove_receiver(self, slot: Slot) -> None:
        with self._lock:
            slot.alive = False
            if slot in self.slots:
                self.slots.remove(slot)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(slot.channel)
        slot.channel.close()

    def start_accounting(self) -> None:
        """Listen to the receivers (ready, closed connections); before they are spawned."""
        self._start_thread(self._account_loop, "dispatch-account")

    def wait_ready(self, timeout: float) -> bool:
        with self._lock:
            slots = list(self.slots)
        return all(slot.ready.wait(timeout) for slot in slots)

    def start_listening(self) -> None:
        """Open the ports: connection attempts before this are refused, not queued."""
        for listener in self.listeners:
            listener.listen(self.backlog)
            self._start_thread(partial(self._accept_loop, listener), "dispatch-accept")

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(5)
        for listener in self.listeners:
            listener.close()
        for slot in list(self.slots):
            self.remove_receiver(slot)
        self._selector.close()

    def _pick(self) -> Slot | None:
        with self._lock:
            candidates = [s for s in self.slots if s.alive]
            if not candidates:
                return None
            chosen = min(candidates, key=lambda s: (s.active, s.order))
            chosen.active += 1
            chosen.order = next(self._ticket)  # ties go round-robin
            return chosen

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                logger.exception("accept failed")
                continue
            with client:
                self._hand_over(client)

    def _hand_over(self, client: socket.socket) -> None:
        while (slot := self._pick()) is not None:
            try:
                socket.send_fds(slot.channel, [b"x"], [client.fileno()])
                return
            except OSError:
                logger.warning("receiver unreachable; trying another")
                with self._lock:
                    slot.alive = False
                    slot.active -= 1
        logger.error("no receiver process available; connection closed")

    def _account_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                events = self._selector.select(ACCEPT_POLL_S)
            except (OSError, ValueError):
                if self._stopping.is_set():
                    return
                continue
            for key, _mask in events:
                slot: Slot = key.data
                try:
                    data = slot.channel.recv(4096)
                except OSError:
                    data = b""
                with self._lock:
                    if not data:
                        slot.alive = False
                        with contextlib.suppress(KeyError, ValueError):
                            self._selector.unregister(slot.channel)
                        continue
                    slot.active = max(0, slot.active - data.count(CLOSED))
                    if READY in data:
                        slot.ready.set()

    def loads(self) -> list[int]:
        with self._lock:
            return [s.active for s in self.slots]


def _bound(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))  # now, so a port conflict fails the start at once
    except OSError:
        listener.close()
        raise
    listener.settimeout(ACCEPT_POLL_S)
    return listener
