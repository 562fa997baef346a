"""An in-process Storage SCP on a free loopback port, and a pynetdicom SCU to talk to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pynetdicom import AE, _config
from pynetdicom.association import Association
from sqlalchemy import Engine

from node.audit.associations import AssociationAudit
from node.audit.messages import Auditor
from node.config import NodeSettings, PeerSettings
from node.dicom.access import PeerPolicy
from node.dicom.ingest import Ingestor
from node.dicom.scp import StorageSCP
from node.dicom.sop_classes import ACCEPTED_STORAGE, ACCEPTED_TRANSFER_SYNTAXES, VERIFICATION
from node.dicom.spool import spool_into
from node.dicom.structure import Limits
from node.dicom.tls import TLSGate
from storage.db import open_engine
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.migrate import upgrade
from tests.support.helpers import free_port

SCU_AE = "TESTSCU"


@dataclass
class RunningSCP:
    port: int
    store: FileStore
    index: InstanceIndex
    engine: Engine
    scp: StorageSCP

    def associate(
        self, ae_title: str = SCU_AE, called: str = "BREASTNODE", also: tuple[str, ...] = ()
    ) -> Association:
        """Proposing implicit and explicit VR little endian, and the syntaxes ``also``."""
        ae = AE(ae_title=ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
        for sop_class in ACCEPTED_STORAGE:
            for syntax in (*ACCEPTED_TRANSFER_SYNTAXES[:2], *also):
                ae.add_requested_context(sop_class, syntax)
        ae.add_requested_context(VERIFICATION)
        return ae.associate("127.0.0.1", self.port, ae_title=called)


def start_scp(
    tmp_path: Path,
    database_url: str,
    *,
    min_free_bytes: int = 0,
    index: InstanceIndex | None = None,
    peers: list[PeerSettings] | None = None,
    tls: TLSGate | None = None,
    limits: Limits | None = None,
    audited: bool = False,
) -> RunningSCP:
    """``audited``: refused stores and each association's instances go to the audit trail."""
    store = FileStore(tmp_path / "store")
    store.prepare()
    engine = open_engine(database_url)
    upgrade(engine)
    index = index or InstanceIndex(engine)
    spool_into(store.spool_dir, min_free_bytes)
    peers = (
        peers
        if peers is not None
        else [PeerSettings(name="scu", ae_title=SCU_AE, host="127.0.0.1")]
    )
    port = free_port()
    audit = AssociationAudit(Auditor(engine, "BREASTNODE"), "BREASTNODE") if audited else None
    scp = StorageSCP(
        NodeSettings(host="127.0.0.1", port=port),
        Ingestor(store, index, min_free_bytes, limits),
        PeerPolicy(peers),
        tls=tls,
        audit=audit,
    )
    scp.start()
    return RunningSCP(port, store, index, engine, scp)


@pytest.fixture
def running_scp(tmp_path: Path, database_url: str) -> Iterator[RunningSCP]:
    running = start_scp(tmp_path, database_url)
    yield running
    running.scp.stop()
    running.engine.dispose()
    _config.STORE_SEND_CHUNKED_DATASET = False
