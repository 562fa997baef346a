"""Loopback ports and waiting for something to happen."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one this process has handed out before: a caller takes
    several before starting anything, and the system may offer a just-closed one again."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """The condition's first truthy value; AssertionError when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
