"""Raw PDU abuse over sockets against a running node (one receiver, SQLite: nothing here
reaches the index): each input is answered with a rejection or an A-ABORT, or the connection
is closed; memory stays bounded; the node stays up and the next valid C-STORE succeeds."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from pydicom import Dataset
from pynetdicom import AE
from pynetdicom.association import Association

from harness.raw_pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    P_DATA_TF,
    Answer,
    associate_rq,
    connect,
    pdu,
    read_answer,
)
from models.synthetic import mammogram
from node.dicom.sop_classes import ACCEPTED_TRANSFER_SYNTAXES
from tests.support.helpers import wait_for
from tests.support.hostile_node import LimitedNode, limited_node

MAX_PDU = 65536
MAX_OBJECT = 1 << 20
HUGE = 0xFFFFFFFF
STREAMED = 64 << 20  # bytes sent after a 0xFFFFFFFF announcement
RSS_BOUND = 16 << 20  # what the node's memory may grow by meanwhile
REQUEST = associate_rq("BREASTNODE", "TESTSCU")
CLOSED = None


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, run_logs: Path) -> Iterator[LimitedNode]:
    with limited_node(
        tmp_path_factory.mktemp("abuse"),
        run_logs,
        max_pdu_length=MAX_PDU,
        max_object_bytes=MAX_OBJECT,
        association_request_timeout_s=3,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def starved(tmp_path_factory: pytest.TempPathFactory, run_logs: Path) -> Iterator[LimitedNode]:
    """A node whose store is always below its reserve."""
    with limited_node(tmp_path_factory.mktemp("starved"), run_logs, min_free_bytes=1 << 62) as n:
        yield n


def exchange(port: int, data: bytes, *, associated: bool = False, close: bool = False) -> Answer:
    """Send ``data`` (after a valid association when ``associated``), closing our side after
    it when ``close``; the node's answer."""
    with connect(port) as sock:
        if associated:
            sock.sendall(REQUEST)
            assert read_answer(sock).pdu_type == A_ASSOCIATE_AC
        try:
            sock.sendall(data)
            if close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return Answer(CLOSED)
        return read_answer(sock)


def random_bytes() -> bytes:
    generator = random.Random(17)
    return bytes([0x42]) + bytes(generator.randrange(256) for _ in range(4095))


CASES: dict[str, tuple[Callable[[int], Answer], set[int | None]]] = {
    "A-ASSOCIATE-RQ announcing 0xFFFFFFFF bytes": (
        lambda port: exchange(port, pdu(0x01, bytes(4096), length=HUGE)),
        {A_ABORT},
    ),
    "P-DATA of 0xFFFFFFFF bytes before any association": (
        lambda port: exchange(port, pdu(P_DATA_TF, bytes(4096), length=HUGE)),
        {A_ABORT},
    ),
    "unknown PDU type 0x09": (lambda port: exchange(port, pdu(0x09, bytes(16))), {A_ABORT}),
    "4 KiB of random bytes": (lambda port: exchange(port, random_bytes()), {A_ABORT}),
    "wrong called AE title": (
        lambda port: exchange(port, associate_rq("SOMEONE_ELSE", "TESTSCU")),
        {A_ASSOCIATE_RJ},
    ),
    "A-ASSOCIATE-RQ cut short, then closed": (
        lambda port: exchange(port, REQUEST[:40], close=True),
        {CLOSED},
    ),
    "P-DATA announced (1000 bytes), 10 sent, then closed": (
        lambda port: exchange(
            port, pdu(P_DATA_TF, bytes(10), length=1000), associated=True, close=True
        ),
        {CLOSED, A_ABORT},
    ),
    "P-DATA of 0xFFFFFFFF bytes after association": (
        lambda port: exchange(port, pdu(P_DATA_TF, bytes(4096), length=HUGE), associated=True),
        {A_ABORT},
    ),
    "unknown PDU type 0x09 after association": (
        lambda port: exchange(port, pdu(0x09, bytes(16)), associated=True),
        {A_ABORT},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_abuse_is_answered_and_the_node_stays_up(node: LimitedNode, case: str) -> None:
    attempt, expected = CASES[case]
    answer = attempt(node.port)
    assert answer.pdu_type in expected, f"{case}: {answer.words}"
    assert_stores(node)


def test_a_huge_announced_pdu_is_not_read_into_memory(node: LimitedNode) -> None:
    process = psutil.Process(node.receiver_pid())
    before = process.memory_info().rss
    with connect(node.port) as sock:
        sock.sendall(REQUEST)
        assert read_answer(sock).pdu_type == A_ASSOCIATE_AC
        answers: list[Answer] = []
        reader = threading.Thread(target=lambda: answers.append(read_answer(sock, 30)))
        reader.start()
        sent = stream(sock, pdu(P_DATA_TF, b"", length=HUGE), STREAMED)
        reader.join(35)
    grown = process.memory_info().rss - before
    assert answers and answers[0].pdu_type == A_ABORT, answers
    assert sent < STREAMED  # the node stopped taking data
    assert grown < RSS_BOUND, f"the node grew by {grown >> 20} MiB"
    assert_stores(node)


def stream(sock: socket.socket, header: bytes, total: int) -> int:
    """Send ``header`` then up to ``total`` bytes; how many were taken before the node
    closed the connection."""
    chunk = bytes(1 << 20)
    sent = 0
    try:
        sock.sendall(header)
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    return sent


def send(port: int, ds: Dataset) -> tuple[Association, Dataset]:
    ae = AE(ae_title="TESTSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(ds.SOPClassUID, list(ACCEPTED_TRANSFER_SYNTAXES[:2]))
    assoc = ae.associate("127.0.0.1", port, ae_title="BREASTNODE")
    assert assoc.is_established
    status = assoc.send_c_store(ds)
    if assoc.is_established:
        assoc.release()
    return assoc, status


def spool_files(node: LimitedNode) -> list[Path]:
    return list((node.process.root / "spool").iterdir())


def test_a_data_set_past_the_bound_is_aborted_and_leaves_nothing(node: LimitedNode) -> None:
    reason = f"data set past {MAX_OBJECT} bytes"
    alerts = sum(reason in m for m in node.security_alerts())
    assoc, status = send(node.port, mammogram(rows=1024, columns=768))  # 1.5 MiB
    assert assoc.is_aborted
    assert "Status" not in status  # no status: the association was aborted
    wait_for(lambda: sum(reason in m for m in node.security_alerts()) > alerts, timeout=15)
    assert reason in node.log()
    wait_for(lambda: not spool_files(node), timeout=10)
    assert_stores(node)


def test_data_sets_below_the_reserve_are_answered_a700(starved: LimitedNode) -> None:
    """Small or past what the disk could hold, each is answered 0xA700 (out of resources,
    which senders retry), audited, and leaves no spool file: the spool writer drops what
    arrives below the reserve."""
    for image in (mammogram(), mammogram(rows=3072, columns=3072)):  # 18 MiB the second
        assoc, status = send(starved.port, image)
        assert status.Status == 0xA700 and not assoc.is_aborted
    wait_for(  # and audited as failed transfers
        lambda: sum("answered 0xA700" in m for m in starved.audit_messages("110104")) >= 2,
        timeout=15,
    )
    wait_for(lambda: not spool_files(starved), timeout=10)


def assert_stores(node: LimitedNode) -> None:
    """The node is up, a valid C-STORE succeeds, and no spool file is left behind."""
    _, status = send(node.port, mammogram())
    assert status.Status == 0x0000
    wait_for(lambda: not spool_files(node), timeout=10)
