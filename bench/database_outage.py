"""Outage benchmark: PostgreSQL unreachable for a minute while a modality keeps sending.

The node reaches a fresh PostgreSQL database through a proxy (harness.tcp_proxy) that is cut
for ``--outage`` seconds, as a stopped server (connections closed, new ones refused), then
restored; the shared server is never stopped. A sender stores one small instance every
``--interval`` seconds throughout, retrying each until it is answered 0x0000. Prints how
each store was answered during the outage, how long after the restore ingest resumed,
whether every acknowledged instance is indexed, and how many lines the outage cost the log.
Figures are printed, never asserted.

    python bench/database_outage.py [--outage 60] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.network import free_port
from harness.node_process import NodeProcess, Peer, config_toml
from harness.tcp_proxy import TcpProxy
from models.synthetic import SyntheticPatient, mammogram
from storage.db import open_engine

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Modality:
    """Sends one instance after another on fresh associations, retrying until 0x0000."""

    def __init__(self, port: int, interval: float) -> None:
        self.port = port
        self.interval = interval
        self.answers: list[tuple[float, int]] = []  # (time, status; -1 without a status)
        self.acknowledged: list[str] = []
        self.stopping = threading.Event()
        self.patient = SyntheticPatient()

    def run(self) -> None:
        ae = AE(ae_title="STORESCU")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        ds: Dataset | None = None
        seed = 0
        while not self.stopping.is_set():
            if ds is None:
                seed += 1
                ds = mammogram(self.patient, rows=32, columns=32, seed=seed)
                ae.requested_contexts = []
                ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
            status = self._store(ae, ds)
            self.answers.append((time.monotonic(), status))
            if status == 0x0000:
                self.acknowledged.append(str(ds.SOPInstanceUID))
                ds = None
            self.stopping.wait(self.interval)

    def _store(self, ae: AE, ds: Dataset) -> int:
        assoc = ae.associate("127.0.0.1", self.port, ae_title="BREASTNODE")
        if not assoc.is_established:
            return -1
        status = int(assoc.send_c_store(ds).get("Status", -1))
        assoc.release()
        return status


def measure(database_url: str, args: argparse.Namespace) -> None:
    database = make_url(database_url)
    assert database.host is not None and database.port is not None
    proxy = TcpProxy(database.host, database.port).start()
    via_proxy = database.set(port=proxy.port).render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory(prefix="breastnode-outage-") as folder:
        root, port = Path(folder) / "store", free_port()
        config = Path(folder) / "config.toml"
        config.write_text(
            config_toml(root, port, [Peer("sender", "STORESCU")], database_url=via_proxy)
        )
        log = Path(folder) / "node.log"
        node = NodeProcess(config=config, root=root, port=port, log=log, log_level="INFO")
        node.start(timeout=120)
        modality = Modality(port, args.interval)
        sender = threading.Thread(target=modality.run)
        try:
            sender.start()
            time.sleep(5)
            proxy.cut()
            cut_at = time.monotonic()
            time.sleep(args.outage)
            proxy.restore()
            restored_at = time.monotonic()
            time.sleep(10)
        finally:
            modality.stopping.set()
            sender.join(60)
            node.stop()
            proxy.stop()
        report(modality, cut_at, restored_at, log, database_url)


def report(
    modality: Modality, cut_at: float, restored_at: float, log: Path, database_url: str
) -> None:
    during = Counter(s for t, s in modality.answers if cut_at <= t < restored_at)
    first_after = next(t for t, s in modality.answers if t >= restored_at and s == 0x0000)
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            indexed = set(
                connection.execute(text("SELECT sop_instance_uid FROM instances")).scalars()
            )
    finally:
        engine.dispose()
    lines = log.read_text().splitlines()
    outage_lines = [line for line in lines if "node.outage" in line]
    acknowledged = set(modality.acknowledged)
    print(
        f"outage of {restored_at - cut_at:.1f} s: stores answered "
        f"{ {hex(s) if s >= 0 else 'no status': n for s, n in sorted(during.items())} }; "
        f"first 0x0000 {first_after - restored_at:.2f} s after the database was back; "
        f"{len(acknowledged)} acknowledged, {len(acknowledged - indexed)} of them not indexed; "
        f"{len(outage_lines)} outage log line(s) in all, "
        f"{sum('ERROR' in line for line in lines)} ERROR line(s) in all:",
        flush=True,
    )
    for line in outage_lines:
        print("   ", line.split(" ", 2)[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--outage", type=float, default=60)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as admin:
            name = f"breastnode_bench_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"not run: PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
        return
    try:
        measure(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
