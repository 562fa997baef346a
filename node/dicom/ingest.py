"""From a spooled C-STORE data set to a durable, indexed instance, and the status to answer.

The order is the durability contract: check space, parse and check the header, skip
duplicates, hash and fsync, rename into the store and fsync its folder, commit the index
row, and only then report success. Every other path removes what it wrote, so nothing
partial is left behind and nothing unacknowledged is kept.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from node.dicom.header import (
    Header,
    HeaderMismatch,
    HeaderUnreadable,
    read_header,
    records_from,
)
from node.dicom.status import StoreStatus
from node.dicom.structure import Announced, Limits, check_structure
from node.dicom.uncertain_commits import UncertainCommits
from node.outage import OutageLog, unavailable
from node.printable import printable
from storage.errors import DuplicateInstanceError, StorageError
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.records import ReceivedInstance, Reception, StoredFile

logger = logging.getLogger(__name__)

OUT_OF_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class IngestResult:
    status: StoreStatus
    header: Header | None = None  # set when the instance is (or already was) stored
    reason: str | None = None  # why it was refused (no received value but escaped UIDs)


@dataclass(frozen=True)
class StoreRequest:
    """What the C-STORE command and the association say about one spooled data set."""

    spooled: Path
    sop_class_uid: str
    sop_instance_uid: str
    calling_ae: str
    peer_address: str
    context_class_uid: str  # the presentation context's abstract syntax
    transfer_syntax_uid: str  # and its transfer syntax: the data set's encoding
    spool_error: OSError | None = None  # the data set could not be spooled (a full disk)

    @property
    def announced(self) -> Announced:
        return Announced(
            self.sop_class_uid,
            self.sop_instance_uid,
            self.context_class_uid,
            self.transfer_syntax_uid,
        )


class Ingestor:
    def __init__(
        self,
        store: FileStore,
        index: InstanceIndex,
        min_free_bytes: int,
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.min_free_bytes = min_free_bytes
        self.limits = limits or Limits()  # of the structural check
        self.index_outage = OutageLog("index database", "C-STORE requests are answered 0xA700")
        self.uncertain = UncertainCommits(store, index)

    def ingest(self, request: StoreRequest) -> IngestResult:
        """Store one instance; never raises, always leaves the spool file gone."""
        started = time.perf_counter()
        try:
            result = self._ingest(request, started)
        except Exception as exc:
            logger.error(
                "processing failure storing SOP Instance %s: %s",
                printable(request.sop_instance_uid),
                type(exc).__name__,
            )
            result = IngestResult(StoreStatus.PROCESSING_FAILURE, reason=type(exc).__name__)
        request.spooled.unlink(missing_ok=True)
        return result

    def _ingest(self, request: StoreRequest, started: float) -> IngestResult:
        uid = request.sop_instance_uid
        shown = printable(uid)  # received: escaped for the log until the check has passed
        self.uncertain.settle()
        if request.spool_error is not None:
            failure = self._os_failure(shown, request.spool_error)
            return IngestResult(failure, reason="the data set could not be spooled")
        free = self.store.free_bytes()
        if free < self.min_free_bytes:
            logger.error(
                "refusing SOP Instance %s: %d bytes free, below min_free_bytes %d",
                shown,
                free,
                self.min_free_bytes,
            )
            return IngestResult(StoreStatus.OUT_OF_RESOURCES, reason="below min_free_bytes")
        try:
            checked = check_structure(request.spooled, request.announced, self.limits)
            header = records_from(
                read_header(request.spooled, checked.inflated_header),
                request.sop_class_uid,
                request.sop_instance_uid,
            )
        except (HeaderUnreadable, HeaderMismatch) as exc:
            status = (
                StoreStatus.CANNOT_UNDERSTAND
                if isinstance(exc, HeaderUnreadable)
                else StoreStatus.DATASET_MISMATCH
            )
            logger.warning(
                "refused SOP Instance %s from %s with 0x%04X: %s",
                shown,
                printable(request.calling_ae),
                status,
                exc,
            )
            return IngestResult(status, reason=str(exc))

        try:
            if self.index.contains(uid):
                logger.info("duplicate SOP Instance %s: already stored, not rewritten", uid)
                return IngestResult(StoreStatus.SUCCESS, header)
            digest = self.store.digest_and_sync(request.spooled)
            received_at = datetime.now(UTC)
            relative = self.store.commit(request.spooled, received_at)
        except OSError as exc:
            return IngestResult(self._os_failure(shown, exc), reason="file store error")
        except StorageError as exc:
            return IngestResult(self._index_failure(shown, exc), reason="index unavailable")

        received = ReceivedInstance(
            patient=header.patient,
            study=header.study,
            series=header.series,
            instance=header.instance,
            file=StoredFile(relative, digest.size, digest.sha256),
            reception=Reception(request.calling_ae, request.peer_address, received_at),
        )
        try:
            self.index.add(received)
        except DuplicateInstanceError:
            self.store.remove(relative)
            logger.info("duplicate SOP Instance %s arrived concurrently; kept the first", uid)
            return IngestResult(StoreStatus.SUCCESS, header)
        except StorageError as exc:
            status = self._index_failure(shown, exc)
            if not self.uncertain.indexed_after_all(relative):
                return IngestResult(status, reason="index refused it")
        except BaseException:
            self.store.remove(relative)
            raise
        self.index_outage.succeeded()
        logger.info(
            "stored SOP Instance %s of study %s: %d bytes from %s in %.0f ms",
            uid,
            header.study.study_instance_uid,
            digest.size,
            request.calling_ae,
            (time.perf_counter() - started) * 1000,
        )
        return IngestResult(StoreStatus.SUCCESS, header)

    def _index_failure(self, uid: str, exc: StorageError) -> StoreStatus:
        """0xA700: the sender tries again later. An outage is logged once (and once more
        when it ends), each refused instance at INFO."""
        if unavailable(exc):
            self.index_outage.failed(exc)
            logger.info("SOP Instance %s answered 0xA700: index database unavailable", uid)
        else:
            logger.error("index refused SOP Instance %s: %s", uid, exc)
        return StoreStatus.OUT_OF_RESOURCES

    @staticmethod
    def _os_failure(uid: str, exc: OSError) -> StoreStatus:
        if exc.errno in OUT_OF_SPACE_ERRNOS:
            logger.error("out of space storing SOP Instance %s: %s", uid, exc.strerror)
        else:
            logger.error("file store error for SOP Instance %s: %s", uid, exc.strerror)
        return StoreStatus.OUT_OF_RESOURCES
