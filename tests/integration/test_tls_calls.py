"""TLS on the connections the node makes and on its HTTP endpoint: C-ECHO and C-STORE to
dcmtk's storescp with +tls (the peer's certificate must chain to the CA bundle and carry the
peer's certificate name; the node shows its own), the audit trail to a syslog collector over
TLS (RFC 5425, openssl s_server as the collector), /healthz and /metrics over HTTPS."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from models.synthetic import SyntheticPatient, mammogram, write
from node.audit.syslog import ship
from node.config import AuditSettings, PeerSettings, Settings
from node.dicom import scu
from node.errors import PeerError
from node.runtime.monitoring import MonitoringServer
from node.sending import Unsent
from node.tls import SiteTLS, site_tls
from storage.audit import AuditTrail
from storage.times import utcnow
from tests.support.cli import breastnode, breastnode_process
from tests.support.helpers import (
    Peer,
    config_toml,
    free_port,
    port_open,
    require_tool,
    wait_for,
)
from tests.support.peers import StoreSCP
from tests.support.pki import Cert, SitePki, tls_section


def tls_pacs(folder: Path, site: SitePki, server: Cert | None) -> StoreSCP:
    """storescp requiring a client certificate from the site CA (dcmtk's default with
    +tls); ``server`` None: plain DICOM."""
    options = [] if server is None else ["+tls", str(server.key), str(server.certificate)]
    options += ["+cf", str(site.ca.certificate)] if server is not None else []
    return StoreSCP(folder).start(*options)


def settings_for(site: SitePki, pacs: StoreSCP, name: str = "pacs.test") -> Settings:
    tls = {
        "certificate": str(site.node.certificate),
        "private_key": str(site.node.key),
        "ca_file": str(site.ca.certificate),
    }
    peer = PeerSettings(
        name="pacs",
        ae_title="PACS",
        host="127.0.0.1",
        port=pacs.port,
        tls=True,
        certificate_name=name,
    )
    return Settings(tls=tls, peers=[peer])


@pytest.fixture
def pacs(tmp_path: Path, site_pki: SitePki) -> Iterator[StoreSCP]:
    server = tls_pacs(tmp_path / "pacs", site_pki, site_pki.pacs)
    yield server
    server.stop()


def client(settings: Settings) -> SiteTLS:
    tls = site_tls(settings)
    assert tls is not None
    return tls


def test_echo_and_store_over_tls(tmp_path: Path, site_pki: SitePki, pacs: StoreSCP) -> None:
    config = tmp_path / "config.toml"
    peer = Peer("pacs", "PACS", port=pacs.port, tls=True, certificate_name="pacs.test")
    extra = tls_section(site_pki.node, site_pki.ca)
    config.write_text(config_toml(tmp_path / "store", free_port(), [peer], extra=extra))
    echoed = breastnode(config, "echo", "pacs")
    assert echoed.returncode == 0, echoed.stderr
    assert "over TLS: status 0x0000" in echoed.stdout

    settings = settings_for(site_pki, pacs)
    images = [
        write(mammogram(SyntheticPatient(), rows=64, columns=48, seed=n), tmp_path / "in")
        for n in range(2)
    ]
    send = scu.sender(client(settings).client)
    outcomes = list(send(settings.node, settings.peers[0], images, 10.0))
    assert [o.status for o in outcomes] == [0, 0], outcomes
    wait_for(lambda: len(pacs.received()) == 2)


def test_the_peer_must_carry_its_certificate_name(site_pki: SitePki, pacs: StoreSCP) -> None:
    settings = settings_for(site_pki, pacs, name="other-pacs.test")
    with pytest.raises(PeerError, match="certificate not accepted: Hostname mismatch"):
        scu.echo(settings.node, settings.peers[0], tls=client(settings).client)


def test_a_peer_certificate_from_another_ca_is_refused(tmp_path: Path, site_pki: SitePki) -> None:
    foreign = tls_pacs(tmp_path / "foreign", site_pki, site_pki.foreign_pacs)
    try:
        settings = settings_for(site_pki, foreign)
        tls = client(settings).client
        with pytest.raises(PeerError, match="certificate not accepted: unable to get local issuer"):
            scu.echo(settings.node, settings.peers[0], tls=tls)
        image = write(mammogram(SyntheticPatient(), rows=64, columns=48), tmp_path / "in")
        [outcome] = scu.store(settings.node, settings.peers[0], [image], 10.0, tls=tls)
        assert outcome.unsent is Unsent.UNREACHABLE
        assert "certificate not accepted" in outcome.detail
        assert foreign.received() == []
    finally:
        foreign.stop()


def test_a_tls_peer_is_never_called_in_plain(tmp_path: Path, site_pki: SitePki) -> None:
    plain = tls_pacs(tmp_path / "plain", site_pki, None)
    try:
        settings = settings_for(site_pki, plain)
        with pytest.raises(PeerError, match="TLS handshake failed"):
            scu.echo(settings.node, settings.peers[0], tls=client(settings).client)
        with pytest.raises(PeerError, match=r"\[tls\] is not configured"):
            scu.echo(settings.node, settings.peers[0])
    finally:
        plain.stop()


def collector(site: SitePki, server: Cert, port: int) -> subprocess.Popen[bytes]:
    """openssl s_server as an RFC 5425 collector: it requires the node's client certificate
    and writes what it receives to its standard output; one connection, then it exits (its
    standard input is held open: at its end s_server drops the connection)."""
    return subprocess.Popen(
        [
            require_tool("openssl"), "s_server", "-accept", f"127.0.0.1:{port}",
            "-cert", str(server.certificate), "-key", str(server.key),
            "-CAfile", str(site.ca.certificate), "-Verify", "1", "-verify_return_error",
            "-quiet", "-naccept", "1",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_audit_shipped_over_tls(engine: Engine, site_pki: SitePki) -> None:
    trail = AuditTrail(engine)
    for n in range(3):
        trail.append("110100", 0, f"<AuditMessage n='{n}'/>", utcnow())
    tls = client(Settings(tls=tls_settings(site_pki))).client

    port = free_port()
    foreign = collector(site_pki, site_pki.foreign_pacs, port)
    settings = AuditSettings(syslog_host="127.0.0.1", syslog_port=port, syslog_protocol="tls")
    try:
        error = wait_for(lambda: _ship_error(trail, settings, tls))
        assert isinstance(error, ssl.SSLCertVerificationError), error
        assert trail.shipped_through() == 0  # nothing counted as sent
    finally:
        foreign.kill()
        foreign.communicate(timeout=10)  # and closes its pipes

    port = free_port()
    settings = AuditSettings(syslog_host="127.0.0.1", syslog_port=port, syslog_protocol="tls")
    genuine = collector(site_pki, site_pki.pacs, port)
    shipped: list[int] = []
    wait_for(lambda: _ship_error(trail, settings, tls, shipped) is None)
    received, _ = genuine.communicate(timeout=20)
    assert shipped == [3]
    frames = octet_counted(received)
    assert [f.endswith(f"<AuditMessage n='{n}'/>".encode()) for n, f in enumerate(frames)] == [
        True
    ] * 3
    assert all(b" DICOM+RFC3881 " in f for f in frames)


def tls_settings(site: SitePki) -> dict[str, str]:
    return {
        "certificate": str(site.node.certificate),
        "private_key": str(site.node.key),
        "ca_file": str(site.ca.certificate),
    }


def _ship_error(
    trail: AuditTrail,
    settings: AuditSettings,
    tls: Callable[[], ssl.SSLContext],
    shipped: list[int] | None = None,
) -> BaseException | bool | None:
    """The error shipping ends with (False while the collector is not listening yet)."""
    try:
        sent = ship(trail, settings, "nodehost", tls=tls)
    except ConnectionRefusedError:
        return False
    except OSError as exc:
        return exc
    if shipped is not None:
        shipped.append(sent)
    return None


def octet_counted(stream: bytes) -> list[bytes]:
    """RFC 5425 4.3 frames: MSG-LEN SP SYSLOG-MSG, one after the other."""
    frames = []
    while stream:
        length, _, rest = stream.partition(b" ")
        frames.append(rest[: int(length)])
        stream = rest[int(length) :]
    return frames


def test_health_and_metrics_over_https(engine: Engine, site_pki: SitePki) -> None:
    tls = client(Settings(tls=tls_settings(site_pki)))
    server = MonitoringServer("127.0.0.1", 0, engine, lambda: {"scp": True}, tls=tls.https_server)
    server.start()
    trusted = ssl.create_default_context(cafile=str(site_pki.ca.certificate))
    silent = socket.create_connection(("127.0.0.1", server.port))  # says nothing
    try:
        started = time.monotonic()
        url = f"https://127.0.0.1:{server.port}/healthz"
        with urllib.request.urlopen(url, timeout=10, context=trusted) as response:
            assert json.loads(response.read())["ok"] is True
        assert time.monotonic() - started < 1.0
        metrics = f"https://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(metrics, timeout=10, context=trusted) as response:
            assert b"breastnode_instances_received_total" in response.read()
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10)
    finally:
        silent.close()
        server.stop()


def test_the_node_never_calls_below_tls_1_2(site_pki: SitePki) -> None:
    """A peer that offers only TLS 1.1 (openssl s_server standing in for it) is not called."""
    port = free_port()
    server = subprocess.Popen(
        [
            require_tool("openssl"), "s_server", "-accept", f"127.0.0.1:{port}", "-tls1_1",
            "-cipher", "DEFAULT@SECLEVEL=0", "-cert", str(site_pki.pacs.certificate),
            "-key", str(site_pki.pacs.key), "-quiet",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: port_open(port))
        settings = Settings(
            tls=tls_settings(site_pki),
            peers=[
                PeerSettings(
                    name="old", ae_title="OLD", host="127.0.0.1", port=port, tls=True,
                    certificate_name="pacs.test",
                )
            ],
        )  # fmt: skip
        with pytest.raises(PeerError, match=r"TLS handshake failed: .*PROTOCOL"):
            scu.echo(settings.node, settings.peers[0], tls=client(settings).client)
    finally:
        server.kill()
        server.communicate(timeout=10)


def test_a_certificate_that_does_not_load_stops_the_start(
    tmp_path: Path, site_pki: SitePki
) -> None:
    config = tmp_path / "config.toml"
    mismatched = tls_section(site_pki.node, site_pki.ca).replace(
        str(site_pki.node.key), str(site_pki.pacs.key)
    )
    config.write_text(config_toml(tmp_path / "store", free_port(), [], extra=mismatched))
    result = breastnode_process(config, "serve", timeout=120)
    assert result.returncode != 0
    assert "[tls] cannot load the DICOM server TLS context: KEY_VALUES_MISMATCH" in result.stderr
