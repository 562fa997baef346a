"""Hostile-peer testing: a node started with given [node] limits, and what it logged and
audited. The raw-socket client is harness.raw_pdu (the benchmarks use it too)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.audit import AuditTrail
from storage.db import open_engine
from tests.support.helpers import NodeProcess, Peer, config_toml, free_port

SECURITY_ALERT = "110113"
LOOPBACK_PEER = Peer("loopback", "TESTSCU", host="127.0.0.0/8")


class LimitedNode:
    def __init__(self, process: NodeProcess) -> None:
        self.process = process
        self.port = process.port

    def log(self) -> str:
        return self.process.log.read_text(errors="replace")

    def security_alerts(self) -> list[str]:
        return self.audit_messages(SECURITY_ALERT)

    def audit_messages(self, event_id: str) -> list[str]:
        engine = open_engine(f"sqlite:///{self.process.root / 'index.sqlite3'}")
        try:
            records = AuditTrail(engine).records(after_id=0, limit=100_000)
            return [r.message for r in records if r.event_id == event_id]
        finally:
            engine.dispose()

    def receiver_pid(self) -> int:
        """The process that serves associations (one receiver: the node itself)."""
        assert self.process.process is not None
        return self.process.process.pid


@contextmanager
def limited_node(
    folder: Path, run_logs: Path, min_free_bytes: int = 0, **node: object
) -> Iterator[LimitedNode]:
    """``breastnode serve`` with one receiver (so one process holds every association) and
    the given ``[node]`` keys."""
    port = free_port()
    root = folder / "store"
    config = folder / "config.toml"
    config.write_text(config_toml(root, port, [LOOPBACK_PEER], min_free_bytes=min_free_bytes))
    env = {f"BREASTNODE_NODE__{key.upper()}": str(value) for key, value in node.items()}
    env["BREASTNODE_NODE__RECEIVERS"] = "1"
    log = run_logs / f"node-limits-{uuid.uuid4().hex[:8]}.log"
    process = NodeProcess(config=config, root=root, port=port, log=log, env=env).start(60)
    try:
        yield LimitedNode(process)
    finally:
        process.stop()
