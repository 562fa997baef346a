"""Which certificate admits which peer, and which TLS settings hold together."""

from __future__ import annotations

from typing import Any

import pytest

from node.config import PeerSettings, Settings
from node.dicom.access import NOT_A_PEER, PeerPolicy
from node.tls import carries, certificate_names

TLS = {"certificate": "node.crt", "private_key": "node.key", "ca_file": "ca.crt"}


def peer(name: str, ae: str, **extra: Any) -> PeerSettings:
    return PeerSettings(name=name, ae_title=ae, host="10.1.2.3", **extra)


def test_names_are_the_subject_cn_and_the_dns_and_ip_alternative_names() -> None:
    certificate = {
        "subject": ((("countryName", "BE"),), (("commonName", "pacs.example.org"),)),
        "subjectAltName": (
            ("DNS", "pacs.example.org"),
            ("IP Address", "10.1.2.3"),
            ("email", "it@example.org"),
        ),
    }
    assert certificate_names(certificate) == ("pacs.example.org", "10.1.2.3")


def test_a_name_matches_exactly_without_case_and_an_address_as_an_address() -> None:
    assert carries(["PACS.example.org"], "pacs.example.org.")
    assert not carries(["*.example.org"], "pacs.example.org")  # no wildcards
    assert not carries(["pacs.example.org.evil"], "pacs.example.org")
    assert carries(["2001:DB8::1"], "2001:db8:0::1")
    assert not carries(["10.1.2.3"], "10.1.2.4")
    assert not carries(["10.1.2.3.example.org"], "10.1.2.3")


def test_a_tls_peer_is_admitted_only_by_its_own_certificate() -> None:
    policy = PeerPolicy(
        [
            peer("modality", "MODALITY", tls=True, certificate_name="modality.example.org"),
            peer("other", "OTHER", tls=True, certificate_name="other.example.org"),
            peer("legacy", "LEGACY"),
        ]
    )
    assert policy.refusal("MODALITY", "10.1.2.3", ("modality.example.org",)) is None
    assert policy.refusal("MODALITY", "10.1.2.3", None) == "peer modality must connect over TLS"
    assert not policy.allows("MODALITY", "10.1.2.3")  # AE title and address alone
    assert policy.refusal("MODALITY", "10.1.2.3", ()) == "peer modality must present a certificate"
    refusal = policy.refusal("MODALITY", "10.1.2.3", ("other.example.org",))
    assert refusal == (
        "certificate ['other.example.org'] is not peer modality's "
        "(it must carry 'modality.example.org')"
    )
    # the right certificate from the wrong address, or under another AE title, is no peer
    assert policy.refusal("MODALITY", "10.9.9.9", ("modality.example.org",)) == NOT_A_PEER
    assert policy.refusal("STRANGER", "10.1.2.3", ("modality.example.org",)) == NOT_A_PEER
    # a peer without TLS is admitted as before, over TLS or not
    assert policy.allows("LEGACY", "10.1.2.3")
    assert policy.refusal("LEGACY", "10.1.2.3", ("modality.example.org",)) is None


def test_a_certificate_name_defaults_to_the_host_and_received_names_are_escaped() -> None:
    policy = PeerPolicy([peer("pacs", "PACS", tls=True)])
    assert policy.refusal("PACS", "10.1.2.3", ("10.1.2.3",)) is None
    refusal = policy.refusal("PACS", "10.1.2.3", ("x\nFORGED LINE",))
    assert refusal is not None and "\n" not in refusal


def test_tls_settings_hold_together() -> None:
    with pytest.raises(ValueError, match="certificate_name"):
        PeerSettings(name="net", ae_title="NET", host="10.0.0.0/8", tls=True)
    with pytest.raises(ValueError, match="missing: ca_file"):
        Settings(tls={"certificate": "node.crt", "private_key": "node.key"})
    with pytest.raises(ValueError, match="peer pacs: TLS needs"):
        Settings(peers=[peer("pacs", "PACS", tls=True)])
    with pytest.raises(ValueError, match="syslog_protocol"):
        Settings(audit={"syslog_host": "collector", "syslog_protocol": "tls"})
    with pytest.raises(ValueError, match="plain_port must differ"):
        Settings(node={"port": 2762}, tls=TLS | {"plain_port": 2762})
    with pytest.raises(ValueError, match="plain_port is for a node with a certificate"):
        Settings(tls={"plain_port": 11113})
    settings = Settings(tls=TLS, peers=[peer("pacs", "PACS", tls=True)])
    assert settings.tls.enabled and settings.tls.require_client_certificate
    assert not Settings().tls.enabled
