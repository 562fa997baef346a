"""Which peers may associate: calling AE title and source address must both match a peer,
and a peer with ``tls = true`` must also have come over TLS with a certificate that carries
its name (so neither its AE title and address alone nor another peer's certificate admit it).

A peer's ``host`` may be an IP address, a network in CIDR form, or a host name (resolved at
start-up and again when an address does not match, so a changed DNS entry is picked up).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable

from node.config import PeerSettings
from node.tls import carries

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


NOT_A_PEER = "not a configured peer"


class PeerPolicy:
    def __init__(self, peers: Iterable[PeerSettings]) -> None:
        self._peers: dict[str, list[PeerSettings]] = {}
        for peer in peers:
            self._peers.setdefault(peer.ae_title.strip(), []).append(peer)
        self._networks = {
            peer.name: _resolve(peer.host) for same in self._peers.values() for peer in same
        }

    def allows(self, calling_ae: str, address: str) -> bool:
        """Whether a plain (not TLS) association from this AE title and address is admitted."""
        return self.refusal(calling_ae, address, None) is None

    def refusal(
        self, calling_ae: str, address: str, certificate: tuple[str, ...] | None
    ) -> str | None:
        """Why the association is refused, or None when a peer admits it. ``certificate``:
        the names on the verified client certificate; None over plain TCP, empty over TLS
        without one."""
        try:
            ip = _normalise(ipaddress.ip_address(address.split("%")[0]))
        except ValueError:
            return NOT_A_PEER
        matching = [p for p in self._peers.get(calling_ae.strip(), []) if self._at(p, ip)]
        if not matching:
            return NOT_A_PEER
        problems = []
        for peer in matching:
            if not peer.tls:
                return None
            if certificate is None:
                problems.append(f"peer {peer.name} must connect over TLS")
            elif not certificate:
                problems.append(f"peer {peer.name} must present a certificate")
            elif carries(certificate, peer.identity):
                return None
            else:
                problems.append(
                    f"certificate {list(certificate)!r} is not peer {peer.name}'s "
                    f"(it must carry {peer.identity!r})"
                )
        return "; ".join(problems)

    def _at(self, peer: PeerSettings, ip: Address) -> bool:
        if any(ip in net for net in self._networks[peer.name]):
            return True
        self._networks[peer.name] = _resolve(peer.host)
        return any(ip in net for net in self._networks[peer.name])


def _resolve(host: str) -> list[Network]:
    try:
        network = ipaddress.ip_network(host, strict=False)
        return [_normalise_network(network)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        logger.warning("peer host %s does not resolve; its associations will be refused", host)
        return []
    found = {_normalise(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos}
    return [ipaddress.ip_network(ip) for ip in found]


def _normalise(ip: Address) -> Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def _normalise_network(network: Network) -> Network:
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        prefix = max(network.prefixlen - 96, 0)
        return ipaddress.ip_network(f"{network.network_address.ipv4_mapped}/{prefix}")
    return network
