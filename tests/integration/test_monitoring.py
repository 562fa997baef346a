"""/healthz reports what is down; /metrics reads the database (no node running needed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from sqlalchemy import Engine

from node.runtime.monitoring import MonitoringServer
from storage.queue import JobQueue


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_and_metrics(engine: Engine) -> None:
    state = {"scp": True, "worker": True}
    server = MonitoringServer("127.0.0.1", 0, engine, lambda: dict(state))
    server.start()
    try:
        status, body = get(server.port, "/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        state["worker"] = False
        status, body = get(server.port, "/healthz")
        assert status == 503
        assert json.loads(body)["checks"] == {"scp": True, "worker": False, "database": True}
        JobQueue(engine).enqueue("1.2.3", 1, "analysis")
        status, body = get(server.port, "/metrics")
        assert status == 200
        assert 'breastnode_jobs{state="queued"} 1.0' in body
        assert "breastnode_instances_received_total 0.0" in body
        assert get(server.port, "/other")[0] == 404
    finally:
        server.stop()
