"""The audit trail on SQLite and PostgreSQL: append-only, hash chain, verify, shipping."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from node.audit.syslog import ship
from node.config import AuditSettings
from storage.audit import AuditTrail
from tests.support.helpers import free_port

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def filled(engine: Engine, count: int = 5) -> AuditTrail:
    trail = AuditTrail(engine)
    for n in range(count):
        trail.append("110104", 0, f"<AuditMessage n='{n}'/>", T0 + timedelta(seconds=n))
    return trail


def tamper(engine: Engine, *statements: str) -> None:
    """What a database administrator could do behind the node's back."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_records_no_update"))
            connection.execute(text("DROP TRIGGER audit_records_no_delete"))
        for statement in statements:
            connection.execute(text(statement))


def test_chain_verifies(engine: Engine) -> None:
    check = filled(engine).verify()
    assert check.intact and check.records == 5


def test_records_cannot_be_updated_or_deleted(engine: Engine) -> None:
    filled(engine)
    for statement in (
        "UPDATE audit_records SET message = 'x' WHERE id = 2",
        "DELETE FROM audit_records WHERE id = 2",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (
            ["UPDATE audit_records SET message = '<AuditMessage n=''X''/>' WHERE id = 3"],
            "record 3 was changed",
        ),
        (["DELETE FROM audit_records WHERE id = 3"], "record 3 is missing"),
        (
            [
                "UPDATE audit_records SET id = 100 WHERE id = 2",
                "UPDATE audit_records SET id = 2 WHERE id = 4",
                "UPDATE audit_records SET id = 4 WHERE id = 100",
            ],
            "does not follow its predecessor",
        ),
    ],
    ids=["changed", "removed", "reordered"],
)
def test_tampering_is_detected(engine: Engine, statements: list[str], expected: str) -> None:
    trail = filled(engine)
    tamper(engine, *statements)
    check = trail.verify()
    assert not check.intact
    assert any(expected in problem for problem in check.problems), check.problems


def test_concurrent_appends_keep_one_chain(engine: Engine) -> None:
    trail = AuditTrail(engine)
    threads = [
        threading.Thread(
            target=lambda n=n: [
                trail.append("110104", 0, f"<m t='{n}' i='{i}'/>", T0) for i in range(10)
            ]
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    check = trail.verify()
    assert check.intact and check.records == 40


def test_shipping_over_udp_and_tcp_sends_each_record_once(engine: Engine) -> None:
    trail = filled(engine, 3)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    settings = AuditSettings(syslog_host="127.0.0.1", syslog_port=udp.getsockname()[1])
    assert ship(trail, settings, "nodehost") == 3
    datagrams = [udp.recv(65535) for _ in range(3)]
    assert all(b"DICOM+RFC3881" in d and b"<AuditMessage n=" in d for d in datagrams)
    assert ship(trail, settings) == 0  # the cursor moved
    udp.close()

    trail.append("110100", 0, "<AuditMessage n='tcp'/>", T0)
    port = free_port()
    received = bytearray()
    server = socket.create_server(("127.0.0.1", port))

    def collect() -> None:
        connection, _ = server.accept()
        with connection:
            while chunk := connection.recv(65535):
                received.extend(chunk)

    collector = threading.Thread(target=collect)
    collector.start()
    assert (
        ship(trail, AuditSettings(syslog_host="127.0.0.1", syslog_port=port, syslog_protocol="tcp"))
        == 1
    )
    collector.join(10)
    server.close()
    length, _, message = bytes(received).partition(b" ")
    assert int(length) == len(message)
    assert message.endswith(b"<AuditMessage n='tcp'/>")
