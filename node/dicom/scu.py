"""Outgoing associations: C-ECHO now; result delivery builds on this later."""

from __future__ import annotations

import logging

from pynetdicom import AE

from node.config import NodeSettings, PeerSettings
from node.dicom.scp import quiet_libraries
from node.dicom.sop_classes import VERIFICATION
from node.errors import PeerError

logger = logging.getLogger(__name__)


def echo(node: NodeSettings, peer: PeerSettings, timeout_s: float = 10.0) -> int:
    """C-ECHO the peer; returns its status, raises PeerError when it cannot be reached."""
    if peer.port is None:
        raise PeerError(f"peer {peer.name!r} has no port configured; it cannot be called")
    quiet_libraries()
    ae = AE(ae_title=node.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        reason = "rejected" if assoc.is_rejected else "unreachable or aborted"
        raise PeerError(f"association with {peer.name!r} ({peer.host}:{peer.port}) {reason}")
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if "Status" not in status:
        raise PeerError(f"no C-ECHO response from {peer.name!r}")
    return int(status.Status)
