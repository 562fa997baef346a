"""A pynetdicom association server whose socket can be shared by several worker processes.

With SO_REUSEPORT each worker binds its own listening socket to the same port and the
kernel spreads incoming associations across them, so reception scales past one Python
interpreter's GIL without a proxy in front.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer


class ReusePortServer(ThreadedAssociationServer):
    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def start_shared_server(
    ae: AE, address: tuple[str, int], handlers: list[Any]
) -> ThreadedAssociationServer:
    """Like ``AE.start_server(block=False)``, but on a SO_REUSEPORT socket."""
    server = ae.make_server(address, evt_handlers=handlers, server_class=ReusePortServer)
    thread = threading.Thread(target=server.serve_forever, name="AcceptorServer", daemon=True)
    thread.start()
    ae._servers.append(server)  # as start_server does, so server.shutdown() finds it
    return server
