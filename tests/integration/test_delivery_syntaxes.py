"""Delivery of a study's real result objects: the transfer syntax each peer accepts, pixel for
pixel; one association per study and destination; a refused presentation context is a
configuration error, dead-lettered at once.

Peers are real: dcmtk's storescp (restricted with its transfer syntax options or an
association negotiation profile) and a pynetdicom SCP that records what it received and over
which association.
"""

from __future__ import annotations

import hashlib
import logging
import random
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
)
from pydicom.uid import (
    SecondaryCaptureImageStorage as SECONDARY_CAPTURE,
)
from pynetdicom import AE, _config, evt
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy import Engine

from models.synthetic import MG_FOR_PRESENTATION, SyntheticPatient, mammogram, write
from node.config import PeerSettings, ResultsSettings, Settings
from node.dicom import scu
from node.pipeline.delivery import DeliverySender
from node.pipeline.retry import Failure, RetryPolicy
from node.results.build import build_result_objects
from storage.db import open_engine
from storage.filestore import FileStore
from storage.migrate import upgrade
from storage.outbox import (
    DeliveryState,
    DeliveryView,
    Outbox,
    StoredResult,
    complete_job_with_results,
)
from storage.queue import JobQueue
from storage.times import utcnow
from tests.support.helpers import free_port, require_tool, send_files
from tests.support.peers import ScriptedSCP, StoreSCP
from tests.support.results import mammography_case

LATER = timedelta(hours=1)


@dataclass
class Received:
    association: int
    dataset: Dataset
    transfer_syntax: UID
    size: int  # bytes of the encoded data set, as it came over the network


@dataclass
class RecordingSCP:
    """A pynetdicom Storage SCP that records each data set with its association and syntax."""

    contexts: Mapping[str, Sequence[str]]  # SOP class -> transfer syntaxes it accepts
    ae_title: str = "PACS"
    port: int = field(default_factory=free_port)
    associations: int = 0
    received: list[Received] = field(default_factory=list)
    server: ThreadedAssociationServer | None = None

    def start(self) -> RecordingSCP:
        ae = AE(ae_title=self.ae_title)
        for sop_class, syntaxes in self.contexts.items():
            ae.add_supported_context(sop_class, list(syntaxes))
        seen: dict[int, int] = {}

        def on_accepted(event: Any) -> None:
            self.associations += 1
            seen[id(event.assoc)] = self.associations

        def on_store(event: Any) -> int:
            raw = event.request.DataSet
            ds = event.dataset
            ds.file_meta = event.file_meta
            self.received.append(
                Received(
                    seen[id(event.assoc)],
                    ds,
                    UID(event.context.transfer_syntax),
                    len(raw.getvalue()),
                )
            )
            return 0x0000

        self.server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_ACCEPTED, on_accepted), (evt.EVT_C_STORE, on_store)],
        )
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


@pytest.fixture(autouse=True)
def _in_memory_receive(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recording peer reads each data set from memory (the node's SCP spools to disk)."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", False)


@dataclass
class Results:
    outbox: Outbox
    store: FileStore
    tmp: Path
    built: dict[str, Dataset] = field(default_factory=dict)  # by SOP Instance UID
    stored: dict[str, Path] = field(default_factory=dict)
    studies: list[str] = field(default_factory=list)

    def add_study(self, engine: Engine, destinations: Sequence[str]) -> list[Dataset]:
        """A four-view study's real result objects (2 SRs, 4 RGB overlays), stored and
        queued for ``destinations`` as the analysis worker does."""
        case = mammography_case()
        sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
        objects = build_result_objects(sources, case.result, ResultsSettings(), "BREASTNODE", 1)
        stored = []
        for ds in objects:
            spooled = self.store.spool_dir / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(spooled, enforce_file_format=True)
            digest = self.store.digest_and_sync(spooled)
            relative = self.store.commit(spooled, results=True)
            uid = str(ds.SOPInstanceUID)
            self.built[uid], self.stored[uid] = ds, self.store.path_of(relative)
            stored.append(
                StoredResult(uid, str(ds.SOPClassUID), relative, digest.size, digest.sha256)
            )
        queue = JobQueue(engine)
        job_id, _ = queue.enqueue(case.result.study_instance_uid, 1, "analysis")
        assert queue.claim("worker", timedelta(minutes=1)) is not None
        complete_job_with_results(engine, job_id, "worker", stored, destinations, utcnow())
        self.studies.append(case.result.study_instance_uid)
        return objects

    def sender(self, *peers: tuple[str, int]) -> DeliverySender:
        settings = Settings(
            peers=[
                {"name": name, "ae_title": "PACS", "host": "127.0.0.1", "port": port}
                for name, port in peers
            ],
            delivery={"timeout_s": 10},
        )
        policy = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(minutes=15))
        return DeliverySender(
            settings, self.outbox, self.store, "sender", policy, random.Random(1), send=scu.store
        )

    def digests(self) -> dict[str, str]:
        return {uid: hashlib.sha256(p.read_bytes()).hexdigest() for uid, p in self.stored.items()}


def _results(engine: Engine, tmp: Path) -> Results:
    store = FileStore(tmp / "store")
    store.prepare()
    return Results(Outbox(engine), store, tmp)


@pytest.fixture
def results(engine: Engine, tmp_path: Path) -> Results:
    """On SQLite and PostgreSQL: the outbox's claims and per-row states are under test."""
    return _results(engine, tmp_path)


@pytest.fixture
def sqlite_results(tmp_path: Path) -> Iterator[tuple[Engine, Results]]:
    """SQLite only, for what the database does not change (what goes over the network)."""
    engine = open_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    upgrade(engine)
    yield engine, _results(engine, tmp_path)
    engine.dispose()


def assert_same_object(received: Dataset, stored: Dataset) -> None:
    """Every attribute of the stored object arrived with its value; pixels compared decoded."""
    for element in stored:
        if element.keyword == "PixelData":
            continue
        assert element.tag in received, element.keyword
        assert received[element.tag].value == element.value, element.keyword
    if "PixelData" in stored:
        assert np.array_equal(received.pixel_array, stored.pixel_array)
        assert received.pixel_array.dtype == stored.pixel_array.dtype


# storescp option -> the syntax the overlays and the SRs should arrive in
SYNTAX_CASES = {
    "prefers JPEG-LS (+xt)": (("+xt",), JPEGLSLossless, ExplicitVRLittleEndian),
    "uncompressed (default)": ((), ExplicitVRLittleEndian, ExplicitVRLittleEndian),
    "implicit only (+xi)": (("+xi",), ImplicitVRLittleEndian, ImplicitVRLittleEndian),
}


@pytest.mark.parametrize("case", list(SYNTAX_CASES))
def test_each_object_arrives_pixel_identical_in_the_syntax_the_peer_accepts(
    sqlite_results: tuple[Engine, Results], case: str
) -> None:
    engine, results = sqlite_results
    options, image_syntax, sr_syntax = SYNTAX_CASES[case]
    results.add_study(engine, ["pacs"])
    before = results.digests()
    peer = StoreSCP(results.tmp / "pacs").start(*options)
    try:
        batch = results.sender(("pacs", peer.port)).run_once()
        assert batch is not None and len(batch) == 6
    finally:
        peer.stop()
    rows = results.outbox.deliveries()
    assert [r.state for r in rows] == [DeliveryState.DELIVERED] * 6, [r.last_error for r in rows]
    received = [dcmread(p) for p in peer.received()]
    assert sorted(str(ds.SOPInstanceUID) for ds in received) == sorted(results.built)
    for ds in received:
        stored = dcmread(results.stored[str(ds.SOPInstanceUID)])
        expected = image_syntax if "PixelData" in stored else sr_syntax
        assert ds.file_meta.TransferSyntaxUID == expected, ds.SOPClassUID.name
        assert_same_object(ds, stored)
    assert results.digests() == before  # the stored files are never rewritten


def test_jpeg_ls_overlays_decode_identically_with_dcmtk(
    sqlite_results: tuple[Engine, Results],
) -> None:
    """An independent decoder (dcmtk's CharLS) reads the codestreams back to the same pixels."""
    engine, results = sqlite_results
    results.add_study(engine, ["pacs"])
    peer = StoreSCP(results.tmp / "pacs").start("+xt")
    try:
        assert results.sender(("pacs", peer.port)).run_once() is not None
    finally:
        peer.stop()
    overlays = [p for p in peer.received() if dcmread(p).SOPClassUID == SECONDARY_CAPTURE]
    assert len(overlays) == 4
    for path in overlays:
        plain = path.with_suffix(".plain")
        subprocess.run([require_tool("dcmdjpls"), str(path), str(plain)], check=True, timeout=60)
        decoded = dcmread(plain)
        stored = dcmread(results.stored[str(decoded.SOPInstanceUID)])
        assert decoded.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert decoded.PlanarConfiguration == 0 and decoded.PhotometricInterpretation == "RGB"
        assert decoded.PixelData == stored.PixelData


def test_a_study_goes_over_one_association_per_destination(
    results: Results, engine: Engine
) -> None:
    results.add_study(engine, ["pacs", "archive"])
    results.add_study(engine, ["pacs", "archive"])
    every_syntax = [JPEGLSLossless, ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    contexts = {str(ds.SOPClassUID): every_syntax for ds in results.built.values()}
    pacs, archive = RecordingSCP(contexts), RecordingSCP(contexts)
    sender = results.sender(("pacs", pacs.port), ("archive", archive.port))

    # Both peers down: each row backs off on its own, but rows that failed together are due
    # together, so the retry still takes the whole study at once.
    down = sender.run_once()
    assert down is not None and len(down) == 6
    failed = [r for r in results.outbox.deliveries() if r.id in {d.id for d in down}]
    assert all(r.state is DeliveryState.PENDING and r.attempts == 1 for r in failed)
    assert len({r.next_attempt_at for r in failed}) == 1
    assert {(r.destination, r.study_instance_uid) for r in failed} == {
        (down[0].destination, down[0].study_instance_uid)
    }

    pacs.start()
    archive.start()
    try:
        batches: list[list[DeliveryView]] = []
        while (batch := sender.run_once(now=utcnow() + LATER)) is not None:
            batches.append(batch)
    finally:
        pacs.stop()
        archive.stop()
    assert sorted(len(b) for b in batches) == [6, 6, 6, 6]
    assert all(r.state is DeliveryState.DELIVERED for r in results.outbox.deliveries())
    for peer in (pacs, archive):
        assert peer.associations == 2  # two studies: two associations, not twelve
        assert sorted(str(r.dataset.SOPInstanceUID) for r in peer.received) == sorted(results.built)
        for association in (1, 2):
            studies = {
                str(r.dataset.StudyInstanceUID)
                for r in peer.received
                if r.association == association
            }
            count = sum(1 for r in peer.received if r.association == association)
            assert len(studies) == 1 and count == 6
        for r in peer.received:  # JPEG-LS is preferred for images, Explicit for the rest
            wanted = JPEGLSLossless if "PixelData" in r.dataset else ExplicitVRLittleEndian
            assert r.transfer_syntax == wanted
            assert_same_object(r.dataset, dcmread(results.stored[str(r.dataset.SOPInstanceUID)]))


OVERLAYS_ONLY_PROFILE = """\
[[TransferSyntaxes]]
[JPEGLSOnly]
TransferSyntax1 = JPEGLSLossless

[[PresentationContexts]]
[OverlaysOnly]
PresentationContext1 = SecondaryCaptureImageStorage\\JPEGLSOnly

[[Profiles]]
[OverlaysOnly]
PresentationContexts = OverlaysOnly
"""


def test_a_refused_presentation_context_is_dead_lettered_at_once(
    results: Results, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """storescp configured for overlays in JPEG-LS only: the overlays arrive, the two SRs
    (refused SOP classes) are dead on their first attempt with the reason, in the same
    association, and are not called unreachable."""
    results.add_study(engine, ["pacs"])
    profile = results.tmp / "overlays-only.cfg"
    profile.write_text(OVERLAYS_ONLY_PROFILE)
    peer = StoreSCP(results.tmp / "pacs").start("--config-file", str(profile), "OverlaysOnly")
    caplog.set_level(logging.INFO, logger="node.pipeline.delivery")
    try:
        batch = results.sender(("pacs", peer.port)).run_once()
        assert batch is not None and len(batch) == 6
        assert results.sender(("pacs", peer.port)).run_once(now=utcnow() + LATER) is None
    finally:
        peer.stop()
    rows = {r.sop_instance_uid: r for r in results.outbox.deliveries()}
    by_class = {uid: str(results.built[uid].SOPClassUID) for uid in rows}
    for uid, row in rows.items():
        assert row.attempts == 1
        if by_class[uid] == SECONDARY_CAPTURE:
            assert row.state is DeliveryState.DELIVERED
            continue
        name = UID(by_class[uid]).name
        reason = (
            f"presentation context rejected: {name} in "
            "Explicit VR Little Endian, Implicit VR Little Endian"
        )
        assert row.state is DeliveryState.DEAD
        assert row.last_error == reason
        assert any(reason in m and "dead letter" in m for m in caplog.messages)
    assert sum(r.state is DeliveryState.DEAD for r in rows.values()) == 2
    received = [dcmread(p) for p in peer.received()]
    assert len(received) == 4
    assert {ds.file_meta.TransferSyntaxUID for ds in received} == {JPEGLSLossless}
    assert not any("unreachable" in m for m in caplog.messages)


def test_a_peer_that_accepts_none_of_the_contexts_dead_letters_every_object(
    results: Results, engine: Engine
) -> None:
    """The peer takes the association but only mammograms: pynetdicom aborts an association
    with no accepted context, and that is still a configuration error, not an outage."""
    results.add_study(engine, ["pacs"])
    peer = ScriptedSCP([]).start([MG_FOR_PRESENTATION])
    try:
        assert results.sender(("pacs", peer.port)).run_once() is not None
    finally:
        peer.stop()
    rows = results.outbox.deliveries()
    assert [r.state for r in rows] == [DeliveryState.DEAD] * 6
    assert all(
        (r.last_error or "").startswith(
            f"presentation context rejected: {UID(r.sop_class_uid).name} in "
        )
        for r in rows
    )
    overlay = next(r for r in rows if r.sop_class_uid == SECONDARY_CAPTURE)
    assert overlay.last_error == (
        "presentation context rejected: Secondary Capture Image Storage in JPEG-LS Lossless "
        "Image Compression, Explicit VR Little Endian, Implicit VR Little Endian"
    )
    assert peer.received == []


def test_an_image_jpeg_ls_cannot_take_goes_in_the_next_accepted_syntax(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """32 bits allocated is outside JPEG-LS: the object goes Explicit over the same
    association; where the peer takes JPEG-LS only, it is dead (permanent), with the reason."""
    ds = mammogram(SyntheticPatient(), rows=32, columns=32)
    pixels = ds.pixel_array.astype(np.uint32) * 70000
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelData = pixels.tobytes()
    path = write(ds, tmp_path)
    caplog.set_level(logging.WARNING, logger="node.dicom.scu")
    both = RecordingSCP({MG_FOR_PRESENTATION: [JPEGLSLossless, ExplicitVRLittleEndian]}).start()
    only = RecordingSCP({MG_FOR_PRESENTATION: [JPEGLSLossless]}).start()
    try:
        [fallback] = send_files(Settings().node, peer_at(both.port), [path], 10)
        [refused] = send_files(Settings().node, peer_at(only.port), [path], 10)
    finally:
        both.stop()
        only.stop()
    assert fallback.delivered and fallback.transfer_syntax == ExplicitVRLittleEndian
    [arrived] = both.received
    assert np.array_equal(arrived.dataset.pixel_array, pixels)
    assert any("cannot encode in JPEG-LS Lossless" in m for m in caplog.messages)
    assert refused.failure is Failure.PERMANENT and not only.received
    assert refused.detail.startswith("cannot encode in JPEG-LS Lossless Image Compression")


def peer_at(port: int) -> PeerSettings:
    return PeerSettings(name="pacs", ae_title="PACS", host="127.0.0.1", port=port)


def test_converted_copies_live_in_the_spool_named_by_process_and_go_after_the_send(
    tmp_path: Path,
) -> None:
    """A converted copy is written into the given scratch folder (the store's spool, which the
    node sweeps, by process id when a sender dies and by age), not the system temp folder,
    and is removed when the send is over, also when the encoding fails."""
    import os

    from node.dicom.transfer_syntaxes import EncodingError, encoded, inspect, scratch_prefix

    scratch = tmp_path / "spool"
    scratch.mkdir()
    case = mammography_case()
    overlay = next(
        o
        for o in build_result_objects(
            {str(ds.SOPInstanceUID): ds for ds in case.sources},
            case.result,
            ResultsSettings(),
            "BN",
            1,
        )
        if "PixelData" in o
    )
    stored = inspect(write(overlay, tmp_path / "stored"))
    with encoded(stored, JPEGLSLossless, scratch) as path:
        assert path.parent == scratch and path.name.startswith(scratch_prefix(os.getpid()))
        assert dcmread(path).file_meta.TransferSyntaxUID == JPEGLSLossless
    assert list(scratch.iterdir()) == []
    broken = inspect(write(overlay, tmp_path / "stored", "broken.dcm"))
    (tmp_path / "stored" / "broken.dcm").write_bytes(b"\0" * 132)  # unreadable once sent
    with pytest.raises(EncodingError), encoded(broken, JPEGLSLossless, scratch):
        pass
    assert list(scratch.iterdir()) == []
