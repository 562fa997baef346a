"""The monitoring endpoint of the supervisor: /metrics (Prometheus) and /healthz.

/healthz answers 200 with a JSON body when the SCP, the database and the pipeline worker
are all up, 503 (same body, naming what is down) otherwise. With a TLS context both are
served over HTTPS only; each connection's handshake runs in its own thread, under the
handler's timeout, so a client that connects and says nothing holds up no one.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Engine

from node.runtime.metrics import DatabaseCollector
from storage.db import database_up

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, bool]]
REQUEST_TIMEOUT_S = 10.0


class _Server(ThreadingHTTPServer):
    """Wraps accepted sockets in TLS without a handshake: the handler's thread does it."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: Callable[[], ssl.SSLContext] | None,
    ) -> None:
        self.tls = tls
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = self.socket.accept()
        if self.tls is not None:
            client = self.tls().wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a plain request to the HTTPS port, a failed handshake or a client gone mid-way
        error = sys.exc_info()[1]
        logger.debug("monitoring connection from %s failed: %r", client_address[0], error)


def respond(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    """One whole response, its length given so that a keep-alive client knows where the
    body ends."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class MonitoringServer:
    def __init__(
        self,
        host: str,
        port: int,
        engine: Engine,
        health: HealthCheck,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector(engine))
        registry, engine_ = self.registry, engine

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S

            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    respond(self, 200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif self.path.split("?")[0] == "/healthz":
                    checks = health() | {"database": database_up(engine_)}
                    body = json.dumps({"ok": all(checks.values()), "checks": checks}).encode()
                    respond(self, 200 if all(checks.values()) else 503, "application/json", body)
                else:
                    respond(self, 404, "text/plain", b"not found\n")

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("monitoring: %s", format % args)

        self.server = _Server((host, port), Handler, tls)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="monitoring", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
