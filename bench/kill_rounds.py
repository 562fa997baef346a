"""Kill benchmark: 50 SIGKILLs of the node while 200 instances stream in over 4 associations.

The senders resend whatever was not answered 0x0000; the node is killed at moments spread
over the stream and restarted each time (harness.kill_rounds), once on SQLite and once on
PostgreSQL (when the server at 127.0.0.1:5432 answers). Prints, per database, what was
acknowledged, lost, duplicated, orphaned, what the restarts cleaned up and how long they
took. Figures are printed, never asserted.

    python bench/kill_rounds.py [--kills 50] [--instances 200] [--associations 4]
                                [--receivers 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.kill_rounds import instances_to_send, kill_rounds
from harness.network import free_port
from harness.node_process import NodeProcess, Peer, config_toml

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def run(label: str, database_url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="breastnode-kills-") as folder:
        root, port = Path(folder) / "store", free_port()
        config = Path(folder) / "config.toml"
        config.write_text(
            config_toml(root, port, [Peer("sender", "STORESCU")], database_url=database_url)
        )
        node = NodeProcess(
            config=config,
            root=root,
            port=port,
            log=Path(folder) / "node.log",
            env={"BREASTNODE_NODE__RECEIVERS": str(args.receivers)},
            log_level="INFO",
        ).start(timeout=120)
        try:
            figures = kill_rounds(
                node,
                instances_to_send(args.instances),
                args.kills,
                database_url or f"sqlite:///{root / 'index.sqlite3'}",
                associations=args.associations,
                seed=args.seed,
            )
        finally:
            node.stop()
    print(f"{label} ({args.receivers} receiver process(es)): {figures.summary()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--associations", type=int, default=4)
    parser.add_argument("--receivers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run("SQLite", "", args)
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as admin:
            name = f"breastnode_bench_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL left out: not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
        return
    try:
        run("PostgreSQL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
