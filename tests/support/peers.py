"""Real receiving peers for delivery tests: dcmtk's storescp, and a pynetdicom SCP that answers
the statuses a test scripts (the failure statuses storescp cannot be made to send)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer

from tests.support.helpers import free_port, port_open, require_tool, wait_for


@dataclass
class StoreSCP:
    """dcmtk storescp writing what it receives into ``folder``."""

    folder: Path
    ae_title: str = "PACS"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> StoreSCP:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                require_tool("storescp"),
                "-aet",
                self.ae_title,
                "--output-directory",
                str(self.folder),
                *options,
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port))
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def received(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())


@dataclass
class ScriptedSCP:
    """Answers each C-STORE with the next status of ``statuses`` (then 0x0000)."""

    statuses: list[int]
    ae_title: str = "PACS"
    port: int = field(default_factory=free_port)
    received: list[str] = field(default_factory=list)
    server: ThreadedAssociationServer | None = None

    def start(self, sop_classes: Iterator[str] | list[str]) -> ScriptedSCP:
        ae = AE(ae_title=self.ae_title)
        for sop_class in sop_classes:
            ae.add_supported_context(sop_class)

        def on_store(event: Any) -> int:
            status = self.statuses.pop(0) if self.statuses else 0x0000
            if status == 0x0000:
                self.received.append(str(event.request.AffectedSOPInstanceUID))
            return status

        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
