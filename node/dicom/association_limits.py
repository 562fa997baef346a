"""Associations at once, in all and per peer address, decided when a request arrives.

pynetdicom's own ``maximum_associations`` rejects silently (no reason reaches our handlers,
so nothing is logged or audited) and counts every connection thread, including those it is
rejecting. Here the count is of admitted associations only, and the caller over a limit is
told why (A-ASSOCIATE-RJ rejected-transient, local limit exceeded) by the SCP, which logs
and audits it.
"""

from __future__ import annotations

import threading
from collections import Counter

# A-ASSOCIATE-RJ: rejected-transient, service-provider (presentation), local limit exceeded.
REJECT_LOCAL_LIMIT = (0x02, 0x03, 0x02)


class AssociationLimits:
    def __init__(self, in_all: int, per_peer: int) -> None:
        self.in_all = in_all
        self.per_peer = per_peer
        self._lock = threading.Lock()
        self._by_peer: Counter[str] = Counter()
        self._admitted: dict[int, str] = {}

    def admit(self, association: int, address: str) -> str | None:
        """Count the association in, or say which limit it is over."""
        with self._lock:
            if len(self._admitted) >= self.in_all:
                return f"{self.in_all} associations open (limit in all)"
            if self._by_peer[address] >= self.per_peer:
                return f"{self.per_peer} associations open from {address} (limit per peer)"
            self._admitted[association] = address
            self._by_peer[address] += 1
            return None

    def release(self, association: int) -> None:
        with self._lock:
            address = self._admitted.pop(association, None)
            if address is not None:
                self._by_peer[address] -= 1
                if not self._by_peer[address]:
                    del self._by_peer[address]

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._admitted)
