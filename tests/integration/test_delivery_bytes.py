"""How many bytes a full-size four-view study's overlays take on the network, JPEG-LS against
uncompressed: printed (and logged) for docs/PERFORMANCE.md, never a timed assertion.

The study is the node's SYNTHETIC sample at 3328x2560 with a heatmap blob on the lesion side;
each overlay is 3328x2560 RGB, 25.6 MB uncompressed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
)
from pydicom.uid import (
    SecondaryCaptureImageStorage as SECONDARY_CAPTURE,
)

from models.serving.result import (
    BreastResult,
    Category,
    Finding,
    ImageResult,
    Point,
    Region,
    StudyResult,
)
from models.synthetic.samples import write_sample_study
from node.config import PeerSettings, ResultsSettings, Settings
from node.results.build import build_result_objects
from tests.integration.test_delivery_syntaxes import RecordingSCP
from tests.support.helpers import send_files
from tests.support.results import DEMO_MODEL, blob

logger = logging.getLogger(__name__)
SIZE = (3328, 2560)


@pytest.fixture(autouse=True)
def _in_memory_receive(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynetdicom import _config

    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", False)


def full_size_overlays(folder: Path) -> list[Path]:
    """The four Secondary Capture overlays of a 3328x2560 study, stored as the node stores
    them (Explicit VR Little Endian)."""
    sources = [dcmread(p) for p in write_sample_study(folder / "sources", size=SIZE)]
    lesion = Point(SIZE[0] * 0.45, SIZE[1] * 0.55)
    images = []
    for ds in sources:
        heat = np.zeros(SIZE, np.float32)
        findings: tuple[Finding, ...] = ()
        if ds.ImageLaterality == "L":
            heat = blob(*SIZE, lesion, 160)
            findings = (Finding("mass", 0.81, Region.ellipse(lesion, 180, 120, 30)),)
        images.append(
            ImageResult(
                str(ds.SOPInstanceUID), heat, findings, str(ds.ImageLaterality), ds.ViewPosition
            )
        )
    result = StudyResult(
        str(sources[0].StudyInstanceUID),
        tuple(images),
        (
            BreastResult("L", 0.81, Category.SUSPICIOUS),
            BreastResult("R", 0.06, Category.NORMAL),
        ),
        0.81,
        DEMO_MODEL,
    )
    by_uid: dict[str, Dataset] = {str(ds.SOPInstanceUID): ds for ds in sources}
    objects = build_result_objects(by_uid, result, ResultsSettings(), "BREASTNODE", 1)
    paths = []
    for n, overlay in enumerate(o for o in objects if o.SOPClassUID == SECONDARY_CAPTURE):
        path = folder / "results" / f"overlay-{n}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        overlay.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@dataclass
class Sent:
    received: list[tuple[Dataset, int, str]]  # data set, bytes on the network, syntax
    seconds: float  # the send, encoding included, on loopback: informative only

    @property
    def size(self) -> int:
        return sum(size for _, size, _ in self.received)


def send_over(accepts: list[str], paths: list[Path]) -> Sent:
    peer = RecordingSCP({SECONDARY_CAPTURE: accepts}).start()
    try:
        node_peer = PeerSettings(name="pacs", ae_title="PACS", host="127.0.0.1", port=peer.port)
        started = time.perf_counter()
        outcomes = send_files(Settings().node, node_peer, paths, 60)
        seconds = time.perf_counter() - started
    finally:
        peer.stop()
    assert all(o.delivered for o in outcomes), [o.detail for o in outcomes]
    assert peer.associations == 1
    return Sent([(r.dataset, r.size, str(r.transfer_syntax)) for r in peer.received], seconds)


def test_full_size_overlays_bytes_sent_jpeg_ls_against_uncompressed(tmp_path: Path) -> None:
    paths = full_size_overlays(tmp_path)
    assert len(paths) == 4
    stored = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in paths}
    jpeg_ls = send_over([JPEGLSLossless, ExplicitVRLittleEndian], paths)
    plain = send_over([ExplicitVRLittleEndian, ImplicitVRLittleEndian], paths)
    assert {syntax for _, _, syntax in jpeg_ls.received} == {JPEGLSLossless}
    assert {syntax for _, _, syntax in plain.received} == {ExplicitVRLittleEndian}
    for ds, _, _ in jpeg_ls.received:
        original = stored[str(ds.SOPInstanceUID)]
        assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (*SIZE, 3)
        assert np.array_equal(ds.pixel_array, original.pixel_array)
    assert plain.size > sum(SIZE[0] * SIZE[1] * 3 for _ in paths)  # the pixels, and more
    assert jpeg_ls.size < plain.size
    line = (
        f"four 3328x2560 RGB overlays sent: {jpeg_ls.size / 1e6:.1f} MB as JPEG-LS lossless "
        f"({jpeg_ls.seconds:.2f} s on loopback, encoding included), {plain.size / 1e6:.1f} MB "
        f"uncompressed ({plain.seconds:.2f} s): {plain.size / jpeg_ls.size:.2f}:1"
    )
    logger.info(line)
    print(line)
