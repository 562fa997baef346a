"""Which callers may associate: AE title and address must both match one peer."""

from __future__ import annotations

from node.config import PeerSettings
from node.dicom.access import PeerPolicy


def policy(*peers: tuple[str, str]) -> PeerPolicy:
    return PeerPolicy(
        PeerSettings(name=f"p{i}", ae_title=ae, host=host) for i, (ae, host) in enumerate(peers)
    )


def test_title_and_address_must_both_match() -> None:
    rules = policy(("MODALITY", "192.168.10.5"), ("PACS", "10.0.0.0/8"))
    assert rules.allows("MODALITY", "192.168.10.5")
    assert not rules.allows("MODALITY", "192.168.10.6")
    assert not rules.allows("PACS", "192.168.10.5")
    assert rules.allows("PACS", "10.200.3.4")
    assert not rules.allows("UNKNOWN", "10.200.3.4")


def test_titles_are_compared_without_padding() -> None:
    assert policy(("PACS", "127.0.0.1")).allows("PACS            ", "127.0.0.1")


def test_host_names_resolve_and_ipv4_mapped_addresses_match() -> None:
    rules = policy(("WS", "localhost"))
    assert rules.allows("WS", "127.0.0.1")
    assert rules.allows("WS", "::ffff:127.0.0.1")
    assert not rules.allows("WS", "127.0.0.2")


def test_unresolvable_host_and_garbage_address_are_refused() -> None:
    rules = policy(("WS", "no-such-host.invalid"))
    assert not rules.allows("WS", "127.0.0.1")
    assert not policy(("WS", "127.0.0.1")).allows("WS", "not an address")
