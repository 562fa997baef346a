"""Which peers may associate: calling AE title and source address must both match a peer.

A peer's ``host`` may be an IP address, a network in CIDR form, or a host name (resolved at
start-up and again when an address does not match, so a changed DNS entry is picked up).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable

from node.config import PeerSettings

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PeerPolicy:
    def __init__(self, peers: Iterable[PeerSettings]) -> None:
        self._hosts: dict[str, list[str]] = {}
        for peer in peers:
            self._hosts.setdefault(peer.ae_title.strip(), []).append(peer.host)
        self._networks = {ae: self._resolve_all(hosts) for ae, hosts in self._hosts.items()}

    def allows(self, calling_ae: str, address: str) -> bool:
        ae = calling_ae.strip()
        if ae not in self._hosts:
            return False
        try:
            ip = _normalise(ipaddress.ip_address(address.split("%")[0]))
        except ValueError:
            return False
        if any(ip in net for net in self._networks[ae]):
            return True
        self._networks[ae] = self._resolve_all(self._hosts[ae])
        return any(ip in net for net in self._networks[ae])

    @staticmethod
    def _resolve_all(hosts: list[str]) -> list[Network]:
        networks: list[Network] = []
        for host in hosts:
            networks.extend(_resolve(host))
        return networks


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
