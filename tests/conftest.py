"""Fixtures: databases (SQLite and PostgreSQL), node subprocesses, and the run-wide log.

Every log the run produces (this process at DEBUG, every node subprocess at DEBUG) lands in
one folder, and after each test what it logged there is scanned for the patient data the
synthetic generator seeded: a leak fails the test that caused it, in any order.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.cli import logging_restored
from models.synthetic import record_seeded_patients
from tests.support.helpers import IN_CI, NodeProcess, Peer, config_toml, free_port
from tests.support.log_scan import LogWatch, patient_data_in

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SEEDED = record_seeded_patients()  # every synthetic patient the tests make, for the log scan

if os.environ.get("PYTEST_XDIST_WORKER"):
    # ``make test`` runs the suite in one process per core (pytest-xdist); torch's and
    # OpenMP's threads, one per core in each, would then wait on each other and run the
    # training tests several times slower. One thread a process, and the node processes the
    # tests start inherit it. Set before anything imports torch.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
pytest_plugins = ["tests.support.model_fixtures", "tests.support.pki"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test that needs a demo checkpoint trains it when the demo model cache lacks
    it (``make pytest`` fills the cache first), so those tests get a longer time limit."""
    for item in items:
        demo_fixtures = {"demo_weights", "demo_mri_weights", "demo_density_weights"}
        if demo_fixtures & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.timeout(1800))


@pytest.fixture(scope="session")
def run_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "run-logs"


@pytest.fixture(scope="session", autouse=True)
def _capture_run_log(run_logs: Path) -> Iterator[None]:
    run_logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_logs / "pytest-process.log")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    handler.close()


@pytest.fixture(autouse=True)
def _logging_set_up_undone() -> Iterator[None]:
    """A test that calls the CLI's ``main`` directly has it set up logging in this process: a
    stderr handler on pytest's capture (closed after the test) and the root level (which would
    hide DEBUG lines from the log scan). Both are put back after each test."""
    with logging_restored():
        yield


@pytest.fixture(autouse=True)
def _no_patient_data_in_logs(_capture_run_log: None, run_logs: Path) -> Iterator[None]:
    """What this test logged (this process and every node it started, at DEBUG) carries no
    synthetic patient's name, ID or birth date. Autouse, so it is torn down after the
    test's own fixtures have stopped their nodes and their logs are complete."""
    watch = LogWatch(run_logs)
    yield
    leaks = patient_data_in(watch.new_text(), SEEDED)
    if leaks:
        pytest.fail(f"patient data in operational logs: {leaks[:5]}")


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    if not _postgres_available():
        message = "PostgreSQL is not reachable at 127.0.0.1:5432"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_ADMIN


@contextmanager
def _fresh_postgres_database(admin: str) -> Iterator[str]:
    """A new, empty PostgreSQL database's URL, dropped on exit."""
    import psycopg

    name = f"breastnode_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with _fresh_postgres_database(postgres_admin) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``database_url`` shared by a module's tests, for set-up they only read."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('index') / 'index.sqlite3'}"
        return
    with _fresh_postgres_database(request.getfixturevalue("postgres_admin")) as url:
        yield url


NodeFactory = Callable[..., NodeProcess]


@pytest.fixture
def node_factory(tmp_path: Path, run_logs: Path) -> Iterator[NodeFactory]:
    """Start ``breastnode serve`` subprocesses; all are stopped after the test."""
    started: list[NodeProcess] = []

    def start(
        peers: list[Peer] | None = None,
        *,
        database_url: str = "",
        min_free_bytes: int = 0,
        root: Path | None = None,
        port: int | None = None,
        receivers: int | None = None,
        extra: str = "",
        env: dict[str, str] | None = None,
        metrics_port: int = 0,
    ) -> NodeProcess:
        port = port or free_port()
        root = root or tmp_path / "store"
        config = tmp_path / f"config-{len(started)}.toml"
        peers = (
            peers
            if peers is not None
            else [Peer("storescu", "STORESCU"), Peer("echoscu", "ECHOSCU")]
        )
        config.write_text(
            config_toml(
                root,
                port,
                peers,
                database_url=database_url,
                min_free_bytes=min_free_bytes,
                extra=extra,
                metrics_port=metrics_port,
            )
        )
        log = run_logs / f"node-{uuid.uuid4().hex[:8]}.log"
        env = dict(env or {})
        if receivers is not None:
            env["BREASTNODE_NODE__RECEIVERS"] = str(receivers)
        node = NodeProcess(config=config, root=root, port=port, log=log, env=env).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()
