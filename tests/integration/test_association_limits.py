"""Connections that trickle or stay silent, and associations over the limits, on a running
node with one receiver: nobody legitimate is locked out, every refusal is answered, logged
and audited with its reason."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.association import Association

from harness.raw_pdu import A_ABORT, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, associate_rq, read_answer
from harness.raw_pdu import connect as raw_connect
from node.dicom.admission import Admission
from node.dicom.sop_classes import VERIFICATION
from node.runtime.handover import CLOSED, HandoverChannel, start_handover_server
from tests.support.helpers import echoscu, wait_for
from tests.support.hostile_node import LimitedNode, limited_node

REQUEST_TIMEOUT_S = 2
IN_ALL = 6
PER_PEER = 3
TRICKLERS = 40
IDLE_S = 3


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, run_logs: Path) -> Iterator[LimitedNode]:
    with limited_node(
        tmp_path_factory.mktemp("limits"),
        run_logs,
        association_request_timeout_s=REQUEST_TIMEOUT_S,
        max_associations=IN_ALL,
        max_associations_per_peer=PER_PEER,
        network_timeout_s=IDLE_S,
    ) as running:
        yield running


def refused(node: LimitedNode, reason: str, logged: int, audited: int) -> None:
    """The node logged and audited ``reason`` once more than the counts before."""
    wait_for(lambda: node.log().count(reason) > logged, timeout=15)
    wait_for(lambda: sum(reason in m for m in node.security_alerts()) > audited, timeout=15)


def counts(node: LimitedNode, reason: str) -> tuple[int, int]:
    return node.log().count(reason), sum(reason in m for m in node.security_alerts())


def associate(port: int, source: str = "127.0.0.1") -> Association:
    ae = AE(ae_title="TESTSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(VERIFICATION)
    return ae.associate("127.0.0.1", port, ae_title="BREASTNODE", bind_address=(source, 0))


def test_tricklers_lock_no_one_out_and_are_dropped(node: LimitedNode) -> None:
    reason = f"no complete association request within {REQUEST_TIMEOUT_S} s"
    logged, audited = counts(node, reason)
    request = associate_rq("BREASTNODE", "TESTSCU")
    tricklers = []
    for _ in range(TRICKLERS):
        sock = raw_connect(node.port)
        sock.sendall(request[:3])  # a few bytes of a request, then nothing
        tricklers.append(sock)
    try:
        result = echoscu(node.port, "TESTSCU")
        assert result.returncode == 0, result.stdout + result.stderr
        for sock in tricklers:  # each is closed by the node, without an answer
            assert read_answer(sock, timeout=REQUEST_TIMEOUT_S + 10).pdu_type is None
    finally:
        for sock in tricklers:
            sock.close()
    wait_for(lambda: node.log().count(reason) >= logged + TRICKLERS, timeout=15)
    wait_for(
        lambda: sum(reason in m for m in node.security_alerts()) >= audited + TRICKLERS,
        timeout=15,
    )


def test_a_request_sent_slowly_but_in_time_is_served(node: LimitedNode) -> None:
    request = associate_rq("BREASTNODE", "TESTSCU")
    with raw_connect(node.port) as sock:
        for part in (request[:3], request[3:40], request[40:]):
            sock.sendall(part)
            time.sleep(0.3)
        assert read_answer(sock).pdu_type == A_ASSOCIATE_AC


def test_associations_over_the_limit_per_peer_are_rejected_transient(node: LimitedNode) -> None:
    reason = "local limit exceeded"
    logged, audited = counts(node, reason)
    held = [associate(node.port) for _ in range(PER_PEER)]
    try:
        assert all(a.is_established for a in held)
        over = associate(node.port)
        assert over.is_rejected
        rejection = over.acceptor.primitive
        assert (rejection.result, rejection.result_source, rejection.diagnostic) == (2, 3, 2)
        refused(node, f"{PER_PEER} associations open from 127.0.0.1", logged, audited)
        other = associate(node.port, source="127.0.0.2")  # another peer is still admitted
        assert other.is_established
        other.release()
    finally:
        for assoc in held:
            assoc.release()
    again = associate(node.port)  # a place freed is a place given
    assert again.is_established
    again.release()


def test_associations_over_the_limit_in_all_are_rejected_transient(node: LimitedNode) -> None:
    reason = f"{IN_ALL} associations open (limit in all)"
    logged, audited = counts(node, reason)
    sources = [f"127.0.0.{1 + i // PER_PEER}" for i in range(IN_ALL)]
    held = [associate(node.port, source) for source in sources]
    try:
        assert all(a.is_established for a in held)
        over = associate(node.port, source="127.0.0.9")
        assert over.is_rejected
        rejection = over.acceptor.primitive
        assert (rejection.result, rejection.result_source, rejection.diagnostic) == (2, 3, 2)
        refused(node, reason, logged, audited)
    finally:
        for assoc in held:
            assoc.release()


def test_a_wrong_called_ae_title_is_rejected_logged_and_audited(node: LimitedNode) -> None:
    reason = "called AE title 'NOT_US' is not ours"
    logged, audited = counts(node, reason)
    with raw_connect(node.port) as sock:
        sock.sendall(associate_rq("NOT_US", "TESTSCU"))
        answer = read_answer(sock)
    assert (answer.pdu_type, answer.fields) == (A_ASSOCIATE_RJ, (1, 1, 7))
    refused(node, reason, logged, audited)


def test_no_acceptable_presentation_context_is_rejected_logged_and_audited(
    node: LimitedNode,
) -> None:
    reason = "no acceptable presentation context proposed"
    logged, audited = counts(node, reason)
    with raw_connect(node.port) as sock:
        sock.sendall(associate_rq("BREASTNODE", "TESTSCU", abstract_syntax=b"1.2.3.4.5"))
        answer = read_answer(sock)
    assert (answer.pdu_type, answer.fields) == (A_ASSOCIATE_RJ, (1, 1, 1))
    refused(node, reason, logged, audited)


def test_an_idle_association_is_aborted(node: LimitedNode) -> None:
    with raw_connect(node.port) as sock:
        sock.sendall(associate_rq("BREASTNODE", "TESTSCU"))
        assert read_answer(sock).pdu_type == A_ASSOCIATE_AC
        answer = read_answer(sock, timeout=IDLE_S + 15)  # then nothing from us
    assert answer.pdu_type == A_ABORT, answer.words


def test_a_dropped_trickler_counts_as_closed_on_the_hand_over() -> None:
    """With several receivers the supervisor counts each one's open connections by the bytes
    it gets back: a trickler dropped before its association is reported closed too."""
    supervisor_end, receiver_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ae = AE(ae_title="BREASTNODE")
    ae.add_supported_context(VERIFICATION)
    admission = Admission(0.5, 65536, 65536)
    server = start_handover_server(
        ae, ("127.0.0.1", 0), [], None, admission, channel=HandoverChannel(receiver_end)
    )
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        socket.send_fds(supervisor_end, [b"x"], [accepted.fileno()])
        accepted.close()
        client.sendall(associate_rq("BREASTNODE", "TESTSCU")[:3])  # then nothing
        supervisor_end.settimeout(10)
        assert supervisor_end.recv(1) == CLOSED
        assert read_answer(client).pdu_type is None  # dropped
        client.close()
    finally:
        listener.close()
        server.shutdown()
        supervisor_end.close()
        receiver_end.close()
