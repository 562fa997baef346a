"""DICOM TLS on the Storage SCP of `breastnode serve`, against dcmtk's echoscu and storescu
with +tls and openssl s_client: what is admitted, what is refused and how (a log line naming
the reason and a PS3.15 Security Alert), silent connections that must not hold up a real
one, and a renewed certificate taken without a restart.

One node serves the module (two receiver processes: the supervisor's hand-over path); the
silent connections are also tried on the Storage SCP in this process (one receiver: the node
serves with pynetdicom's server in the supervisor).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pynetdicom import AE

from models.synthetic import SyntheticPatient, mammogram, write
from node.config import PeerSettings
from node.dicom.sop_classes import VERIFICATION
from node.dicom.tls import TLSGate
from node.runtime.handover import CLOSED, HandoverChannel, start_handover_server
from node.tls import ReloadingContext, TLSFiles, dicom_server_context
from storage.audit import AuditTrail
from storage.db import open_engine
from tests.support.helpers import (
    NodeProcess,
    Peer,
    config_toml,
    echoscu,
    free_port,
    require_tool,
    storescu,
    wait_for,
)
from tests.support.pki import Cert, SitePki, dcmtk_tls, tls_section
from tests.support.scp import start_scp

HANDSHAKE_TIMEOUT_S = 2.0
SILENT_CONNECTIONS = 50
A_NAME = "modality-a.test"
PEERS = [
    Peer("modality-a", "MODALITY_A", tls=True, certificate_name=A_NAME),
    Peer("modality-b", "MODALITY_B", tls=True, certificate_name="modality-b.test"),
    Peer("legacy", "LEGACY"),
]


class TLSNode:
    """A running node with TLS on ``port`` and a plain port beside it."""

    def __init__(self, process: NodeProcess, plain_port: int, site: SitePki, served: Cert) -> None:
        self.process = process
        self.served = served  # the certificate files it was configured with
        self.port = process.port
        self.plain_port = plain_port
        self.site = site

    def log(self) -> str:
        return self.process.log.read_text(errors="replace")

    def audit_descriptions(self) -> list[str]:
        engine = open_engine(f"sqlite:///{self.process.root / 'index.sqlite3'}")
        try:
            trail = AuditTrail(engine)
            return [
                r.message for r in trail.records(after_id=0, limit=10_000) if r.event_id == "110113"
            ]
        finally:
            engine.dispose()

    def refused(self, action: Callable[[], None], reason: str) -> None:
        """Run ``action`` (it must fail) and check the node logged and audited ``reason``
        once more than before."""
        logged, audited = self.log().count(reason), _count(self.audit_descriptions(), reason)
        action()
        wait_for(lambda: self.log().count(reason) > logged, timeout=15)
        wait_for(lambda: _count(self.audit_descriptions(), reason) > audited, timeout=15)


def _count(messages: list[str], reason: str) -> int:
    return sum(reason in m for m in messages)


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, site_pki: SitePki, run_logs: Path
) -> Iterator[TLSNode]:
    folder = tmp_path_factory.mktemp("tls-node")
    served = Cert(folder / "node.crt", folder / "node.key")  # its own copy: it is renewed
    shutil.copy(site_pki.node.certificate, served.certificate)
    shutil.copy(site_pki.node.key, served.key)
    port, plain_port = free_port(), free_port()
    root = folder / "store"
    config = folder / "config.toml"
    extra = tls_section(
        served, site_pki.ca, plain_port=plain_port, handshake_timeout_s=HANDSHAKE_TIMEOUT_S
    )
    config.write_text(config_toml(root, port, PEERS, extra=extra))
    log = run_logs / f"node-tls-{uuid.uuid4().hex[:8]}.log"
    env = {"BREASTNODE_NODE__RECEIVERS": "2"}
    process = NodeProcess(config=config, root=root, port=port, log=log, env=env).start(60)
    yield TLSNode(process, plain_port, site_pki, served)
    process.stop()


def tls_echo(
    node: TLSNode, cert: Cert | None, calling: str = "MODALITY_A"
) -> subprocess.CompletedProcess[str]:
    return echoscu(node.port, calling, *dcmtk_tls(cert, node.site.ca))


def failed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0, result.stdout + result.stderr


def test_a_peer_with_its_certificate_stores_over_tls(node: TLSNode, tmp_path: Path) -> None:
    image = write(mammogram(SyntheticPatient(), rows=64, columns=48), tmp_path)
    sent = storescu(
        node.port, [image], "MODALITY_A", *dcmtk_tls(node.site.modality_a, node.site.ca)
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert tls_echo(node, node.site.modality_b, "MODALITY_B").returncode == 0
    listing = node.process.cli("studies", "--json")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count('"study_instance_uid"') == 1


def test_a_peer_without_tls_uses_the_plain_port_only(node: TLSNode) -> None:
    assert echoscu(node.plain_port, "LEGACY").returncode == 0
    node.refused(
        lambda: failed(echoscu(node.plain_port, "MODALITY_A")),
        "peer modality-a must connect over TLS",
    )


REFUSALS: dict[str, tuple[Callable[[TLSNode], None], str]] = {
    "plain DICOM to the TLS port": (
        lambda node: failed(echoscu(node.port, "MODALITY_A")),
        "plain (not TLS) connection to the TLS port",
    ),
    "a certificate from another CA": (
        lambda node: failed(tls_echo(node, node.site.foreign)),
        "client certificate not accepted: unable to get local issuer certificate",
    ),
    "an expired certificate": (
        lambda node: failed(tls_echo(node, node.site.expired)),
        "client certificate not accepted: certificate has expired",
    ),
    "a certificate not yet valid": (
        lambda node: failed(tls_echo(node, node.site.not_yet_valid)),
        "client certificate not accepted: certificate is not yet valid",
    ),
    "no client certificate": (
        lambda node: failed(tls_echo(node, None)),
        "client presented no certificate",
    ),
    "the node's certificate not trusted by the client": (
        lambda node: failed(
            echoscu(node.port, "MODALITY_A", *dcmtk_tls(node.site.modality_a, node.site.foreign_ca))
        ),
        "the client does not trust the node's certificate (unknown CA)",
    ),
    "another peer's certificate": (
        lambda node: failed(tls_echo(node, node.site.modality_b, "MODALITY_A")),
        "certificate ['modality-b.test'] is not peer modality-a's "
        "(it must carry 'modality-a.test')",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_with_a_reason_and_a_security_alert(node: TLSNode, case: str) -> None:
    attempt, reason = REFUSALS[case]
    node.refused(lambda: attempt(node), reason)


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_tls_below_1_2_is_refused(node: TLSNode, version: str) -> None:
    def handshake() -> None:
        result = s_client(node, version, "-cipher", "DEFAULT@SECLEVEL=0")
        assert "alert protocol version" in result.stdout + result.stderr, result.stderr

    node.refused(handshake, "TLS version below 1.2 offered")


def test_tls_1_2_without_ecdhe_and_aead_is_refused(node: TLSNode) -> None:
    def handshake() -> None:
        result = s_client(node, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
        assert "handshake failure" in result.stdout + result.stderr, result.stderr

    node.refused(handshake, "no BCP 195 cipher suite offered")
    agreed = s_client(node, "-tls1_2")
    assert "Cipher is ECDHE-ECDSA-AES" in agreed.stdout and "GCM" in agreed.stdout


def s_client(node: TLSNode, *options: str) -> subprocess.CompletedProcess[str]:
    cert = node.site.modality_a
    return subprocess.run(
        [
            require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{node.port}",
            "-CAfile", str(node.site.ca.certificate), "-cert", str(cert.certificate),
            "-key", str(cert.key), *options,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


SILENCE = "no TLS handshake within 2 s"


def test_silent_connections_hold_up_no_one_and_are_dropped(node: TLSNode) -> None:
    before = node.log().count(SILENCE)
    echo_behind_silent_connections("hand-over", node.port, node.site.modality_a, node.site.ca)
    wait_for(lambda: node.log().count(SILENCE) - before == SILENT_CONNECTIONS, timeout=15)


def test_silent_connections_on_one_receiver(tmp_path: Path, site_pki: SitePki) -> None:
    """The Storage SCP as a node with one receiver runs it, with its plain port."""
    files = TLSFiles(site_pki.node.certificate, site_pki.node.key, site_pki.ca.certificate)
    refused: list[str] = []
    plain_port = free_port()
    gate = TLSGate(
        ReloadingContext("DICOM server", dicom_server_context, files),
        HANDSHAKE_TIMEOUT_S,
        lambda _address, reason: refused.append(reason),
        plain_ports=[plain_port],
    )
    peers = [
        PeerSettings(name="legacy", ae_title="LEGACY", host="127.0.0.1"),
        PeerSettings(
            name="a", ae_title="MODALITY_A", host="127.0.0.1", tls=True, certificate_name=A_NAME
        ),
    ]
    scp = start_scp(tmp_path, f"sqlite:///{tmp_path / 'index.sqlite3'}", peers=peers, tls=gate)
    try:
        echo_behind_silent_connections("one receiver", scp.port, site_pki.modality_a, site_pki.ca)
        wait_for(lambda: len(refused) == SILENT_CONNECTIONS)
        assert set(refused) == {SILENCE}
        assert echoscu(plain_port, "LEGACY").returncode == 0
        failed(echoscu(plain_port, "MODALITY_A"))
    finally:
        scp.scp.stop()
        scp.engine.dispose()


def echo_behind_silent_connections(label: str, port: int, cert: Cert, ca: Cert) -> None:
    """Open the silent connections, time a real TLS C-ECHO behind them (printed), then check
    the node drops each once the handshake time is up."""
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(SILENT_CONNECTIONS)]
    try:
        started = time.monotonic()
        result = echoscu(port, "MODALITY_A", *dcmtk_tls(cert, ca))
        latency = time.monotonic() - started
        assert result.returncode == 0, result.stdout + result.stderr
        print(
            f"{label}: TLS C-ECHO behind {SILENT_CONNECTIONS} silent connections: {latency:.3f} s"
        )
        assert latency < 1.0
        for sock in silent:
            sock.settimeout(HANDSHAKE_TIMEOUT_S + 10)
            assert sock.recv(1) == b""  # closed by the node
    finally:
        for sock in silent:
            sock.close()


def test_a_renewed_certificate_is_served_without_a_restart(node: TLSNode) -> None:
    pid = node.process.process.pid if node.process.process else None
    assert served_subject(node) == "breastnode.test"
    renewed = node.site.pki.issue("node-renewed", "breastnode-renewed.test", ("IP:127.0.0.1",))
    shutil.copy(renewed.key, node.served.key)  # the key first: for a moment they do not match
    time.sleep(1.5)
    assert served_subject(node) == "breastnode.test"  # the old pair stays in use meanwhile
    shutil.copy(renewed.certificate, node.served.certificate)
    wait_for(lambda: served_subject(node) == "breastnode-renewed.test", timeout=15)
    assert tls_echo(node, node.site.modality_a).returncode == 0
    assert node.process.process is not None and node.process.process.pid == pid
    log = node.log()
    assert "changed TLS files do not load for the DICOM server context" in log
    assert "DICOM server context reloaded" in log


def served_subject(node: TLSNode) -> str:
    result = s_client(node)
    for line in result.stdout.splitlines():
        if line.startswith("subject=CN = "):
            return line.removeprefix("subject=CN = ").strip()
    raise AssertionError(f"no server certificate subject in: {result.stdout}{result.stderr}")


def test_without_a_required_client_certificate_only_peers_without_tls_may_omit_it(
    tmp_path: Path, site_pki: SitePki
) -> None:
    """require_client_certificate = false: a client without a certificate gets a TLS session,
    and the association decides: a peer with tls = true still must show its certificate."""
    files = TLSFiles(
        site_pki.node.certificate,
        site_pki.node.key,
        site_pki.ca.certificate,
        require_client_certificate=False,
    )
    gate = TLSGate(ReloadingContext("DICOM server", dicom_server_context, files), 5.0)
    peers = [
        PeerSettings(name="legacy", ae_title="LEGACY", host="127.0.0.1"),
        PeerSettings(
            name="a", ae_title="MODALITY_A", host="127.0.0.1", tls=True, certificate_name=A_NAME
        ),
    ]
    scp = start_scp(tmp_path, f"sqlite:///{tmp_path / 'index.sqlite3'}", peers=peers, tls=gate)
    try:
        anonymous = dcmtk_tls(None, site_pki.ca)
        assert echoscu(scp.port, "LEGACY", *anonymous).returncode == 0
        refused = echoscu(scp.port, "MODALITY_A", *anonymous)
        assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
        assert (
            echoscu(scp.port, "MODALITY_A", *dcmtk_tls(site_pki.modality_a, site_pki.ca)).returncode
            == 0
        )
        # a certificate shown is still checked against the CA bundle
        failed(echoscu(scp.port, "LEGACY", *dcmtk_tls(site_pki.foreign, site_pki.ca)))
    finally:
        scp.scp.stop()
        scp.engine.dispose()


def test_a_refused_connection_counts_as_closed_on_the_hand_over(site_pki: SitePki) -> None:
    """The supervisor counts each receiver's open connections by the bytes it gets back; a
    connection refused before it became an association must be reported closed too."""
    supervisor_end, receiver_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    files = TLSFiles(site_pki.node.certificate, site_pki.node.key, site_pki.ca.certificate)
    gate = TLSGate(ReloadingContext("DICOM server", dicom_server_context, files), 5.0)
    ae = AE(ae_title="BREASTNODE")
    ae.add_supported_context(VERIFICATION)
    server = start_handover_server(
        ae, ("127.0.0.1", 0), [], gate, channel=HandoverChannel(receiver_end)
    )
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        socket.send_fds(supervisor_end, [b"x"], [accepted.fileno()])
        accepted.close()
        client.sendall(b"\x01\x00plain DICOM")  # not a TLS hello: refused
        supervisor_end.settimeout(10)
        assert supervisor_end.recv(1) == CLOSED
        client.close()
    finally:
        listener.close()
        server.shutdown()
        supervisor_end.close()
        receiver_end.close()
