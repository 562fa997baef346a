"""Preprocessing and heatmaps on REAL mammograms: the mini-MIAS images (digitised film, MLO,
1024 x 1024, 200 micron pixels) wrapped in synthetic DICOM headers.

Every other model test uses phantoms the project draws itself; those cannot show that the
breast crop, the right-view flip and the way back to source pixels hold on real anatomy
(film labels, pectoral muscle, scanner edges, lesions near the skin line). The labelled
lesion centres give an independent check of where things land in the source grid.

The demo checkpoint was trained on phantoms, so its heatmaps on these images mean nothing
clinically: the tests check geometry and robustness, never accuracy. The last test guards
against findings in the padding of the model grid, which these real images once showed.

The data set lives outside the repository (``../shared/data/mini-mias``) and is never copied
in; the module skips where it is absent. The one exception is a single overlay PNG written to
the gitignored ``test-artifacts/`` folder for a person to look at.
"""

from __future__ import annotations

import csv
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread

from models.serving.inference import Predictor
from models.serving.preprocess import Geometry, prepare
from models.serving.result import Point, StudyResult
from models.serving.sources import study_sources
from models.serving.study import AnalysisImage, analyse_images, image_result, predict_images
from models.synthetic import SYNTHETIC_MARK, SyntheticPatient, mammogram, write
from models.synthetic.demo import DEMO_WORKING_SIZE
from node.config import ResultsSettings
from node.results.build import build_result_objects
from node.results.provenance import NOT_FOR_CLINICAL_USE
from tests.support.helpers import REPO
from tests.support.results import artifact_dir

DATA = REPO.parent / "shared" / "data" / "mini-mias"
if not (DATA / "labels.csv").is_file() or not (DATA / "images").is_dir():
    pytest.skip(f"the mini-MIAS data set is not at {DATA}", allow_module_level=True)

SIZE = 1024  # every mini-MIAS image is 1024 x 1024
PIXEL_SPACING_MM = 0.2
STORED_SHIFT = 6  # 8-bit PNG values << 6: 14 stored bits, as mammogram() declares
WOMEN = 10  # studies (left + right) through the demo engine
# Patient Orientation for the wrapped views when mammogram() sets none: the columns run from
# the chest wall to the nipple on left views (anterior), the other way on right views; single
# letters, which every version of the SC overlay accepts.
ORIENTATION = {"L": ["A", "F"], "R": ["P", "F"]}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
TEXT_ROWS = 200  # the overlay's burned-in text (yellow) sits in the top rows


@dataclass(frozen=True)
class Lesion:
    abnormality: str
    column: float  # source grid (top-left origin)
    row: float
    radius: float


@dataclass(frozen=True)
class Labelled:
    name: str  # mdbNNN
    laterality: str
    lesions: tuple[Lesion, ...]  # with coordinates only

    @property
    def woman(self) -> int:
        return (int(self.name[3:]) + 1) // 2  # mdb001 (R) and mdb002 (L) are woman 1


def laterality_of(name: str) -> str:
    return "L" if int(name[3:]) % 2 == 0 else "R"


def png_path(name: str) -> Path:
    return DATA / "images" / f"{name}.png"


def read_labels() -> dict[str, Labelled]:
    """Every image the folder holds, with its lesions that have coordinates (maybe none)."""
    lesions: dict[str, list[Lesion]] = defaultdict(list)
    names: set[str] = set()
    with (DATA / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            name = row["Name"].strip()
            if not png_path(name).is_file():
                continue
            names.add(name)
            # widely scattered calcifications have no centre: empty, or "*NOTE 3*" split
            # over the x and y columns (the original list's note on such cases)
            x, y, r = (row[key].strip() for key in ("x", "y", "r"))
            if x.isdigit() and y.isdigit():
                lesions[name].append(
                    Lesion(
                        row["Abnormality"].strip(),
                        float(x),
                        SIZE - float(y),  # the labels' origin is the bottom-left corner
                        float(r) if r.isdigit() else 0.0,
                    )
                )
    return {n: Labelled(n, laterality_of(n), tuple(lesions[n])) for n in sorted(names)}


LABELS = read_labels()
ABNORMAL = [item for item in LABELS.values() if item.lesions]


def png_pixels(name: str) -> np.ndarray:
    with Image.open(png_path(name)) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    assert pixels.shape == (SIZE, SIZE), f"{name}: {pixels.shape}"
    return pixels


def wrap(
    name: str, folder: Path, patient: SyntheticPatient | None = None, study_uid: str | None = None
) -> Path:
    """The PNG's pixels in a synthetic MG MLO header (patient, institution: SYNTHETIC)."""
    laterality = laterality_of(name)
    ds = mammogram(
        patient, study_uid=study_uid, laterality=laterality, view="MLO", rows=SIZE, columns=SIZE
    )
    assert ds.BitsStored == 14 and ds.ImageComments == SYNTHETIC_MARK
    ds.PixelData = (png_pixels(name).astype(np.uint16) << STORED_SHIFT).tobytes()
    ds.PixelSpacing = [PIXEL_SPACING_MM, PIXEL_SPACING_MM]
    ds.ImagerPixelSpacing = [PIXEL_SPACING_MM, PIXEL_SPACING_MM]
    if "PatientOrientation" not in ds:
        ds.PatientOrientation = ORIENTATION[laterality]
    return write(ds, folder, f"{name}.dcm")


def source_crop(geometry: Geometry) -> tuple[int, int, int, int]:
    """The crop (top, left, bottom, right; exclusive ends) in the stored source grid: right
    views are cropped after the flip, so their columns are mirrored back."""
    top, left, bottom, right = geometry.crop
    if geometry.flipped:
        columns = geometry.source_shape[1]
        left, right = columns - right, columns - left
    return top, left, bottom, right


def inside(point: Point, box: tuple[int, int, int, int]) -> bool:
    top, left, bottom, right = box
    return left <= point.column < right and top <= point.row < bottom


def expected_display(pixels: np.ndarray) -> np.ndarray:
    """What display_values must give for these stored values (no LUT, no window): the 0.5th
    percentile to 0, the maximum to 1; in the same, unflipped grid."""
    values = (pixels.astype(np.uint16) << STORED_SHIFT).astype(np.float64)
    low, high = float(np.percentile(values, 0.5)), float(values.max())
    return np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def test_preprocessing_keeps_every_labelled_lesion(tmp_path: Path) -> None:
    """All labelled images with coordinates: display values, the crop, the flip and the way
    to the model grid and back, checked against the lesion centres."""
    assert ABNORMAL, "no labelled lesion with coordinates in the data set"
    started = time.monotonic()
    centres = centres_in_crop = centres_in_model = 0
    area_fractions: list[float] = []
    worst_round_trip = 0.0
    misses: list[str] = []
    for item in ABNORMAL:
        path = wrap(item.name, tmp_path)
        sources = study_sources([path])
        assert sources.kind == "mammography" and sources.skipped == 0
        [image] = sources.images
        assert image.laterality == item.laterality and image.view == "MLO"
        display = image.image
        assert display.shape == (SIZE, SIZE) and display.dtype == np.float32
        assert np.isfinite(display).all()
        assert float(display.min()) >= 0.0 and float(display.max()) <= 1.0
        # the source grid is the stored one: nothing flipped, shifted or clipped on the way
        np.testing.assert_allclose(display, expected_display(png_pixels(item.name)), atol=1e-5)
        path.unlink()  # keep at most one 2 MB file on disk at a time

        model_input, geometry = prepare(display, image.laterality, DEMO_WORKING_SIZE)
        assert model_input.shape == DEMO_WORKING_SIZE and np.isfinite(model_input).all()
        assert abs(float(model_input.mean())) < 1e-3 and abs(float(model_input.std()) - 1) < 1e-3
        assert geometry.flipped == (item.laterality == "R")
        box = source_crop(geometry)
        top, left, bottom, right = box
        assert 0 <= top < bottom <= SIZE and 0 <= left < right <= SIZE
        area_fractions.append((bottom - top) * (right - left) / SIZE**2)
        rows, columns = geometry.model_shape
        for lesion in item.lesions:
            centres += 1
            centre = Point(lesion.column, lesion.row)
            in_crop = inside(centre, box)
            centres_in_crop += in_crop
            if not in_crop:
                misses.append(f"{item.name} {lesion.abnormality} at {centre} crop {box}")
            model = geometry.to_model(centre)
            back = geometry.to_source(model)
            error = math.hypot(back.column - centre.column, back.row - centre.row)
            worst_round_trip = max(worst_round_trip, error)
            assert error < 1e-6, f"{item.name}: {centre} -> {model} -> {back}"
            in_model = -0.5 <= model.column <= columns - 0.5 and -0.5 <= model.row <= rows - 0.5
            centres_in_model += in_model
            # what is in the crop is in the model grid (the converse need not hold: a point
            # above or below the crop may land in the model grid's padding)
            assert in_model or not in_crop, f"{item.name}: {centre} -> {model}, crop {box}"
    print(
        f"\nmini-MIAS preprocessing: {len(ABNORMAL)} images, {centres} lesion centres; "
        f"{centres_in_crop}/{centres} inside the breast crop, {centres_in_model}/{centres} "
        f"inside the {DEMO_WORKING_SIZE} model grid; crop area fraction median "
        f"{statistics.median(area_fractions):.3f} (min {min(area_fractions):.3f}, max "
        f"{max(area_fractions):.3f}); worst marker round trip {worst_round_trip:.2e} px; "
        f"{time.monotonic() - started:.1f} s"
    )
    for miss in misses:
        print(f"  outside the crop: {miss}")
    # a lesion centre lies in the breast, and the crop is the breast plus a margin: no
    # labelled lesion may be cut away before the model sees the image
    assert not misses


def sample_women() -> list[tuple[Labelled, Labelled]]:
    """WOMEN women with both breasts in the folder and a located lesion in at least one,
    spread evenly over the numbers (deterministic)."""
    by_woman: dict[int, list[Labelled]] = defaultdict(list)
    for item in LABELS.values():
        by_woman[item.woman].append(item)
    pairs = []
    for woman in sorted(by_woman):
        members = sorted(by_woman[woman], key=lambda item: item.laterality)  # L, R
        if len(members) == 2 and any(m.lesions for m in members):
            pairs.append((members[0], members[1]))
    step = max(1, len(pairs) // WOMEN)
    return pairs[::step][:WOMEN]


def model_heat_at(heatmap: np.ndarray, points: list[Point]) -> np.ndarray:
    """Bilinear samples of a model-grid map at (column, row) points, edges clamped (as the
    resize back to the source grid does)."""
    rows, columns = heatmap.shape
    column = np.clip([p.column for p in points], 0, columns - 1)
    row = np.clip([p.row for p in points], 0, rows - 1)
    c0 = np.minimum(np.floor(column).astype(int), columns - 2)
    r0 = np.minimum(np.floor(row).astype(int), rows - 2)
    fc, fr = column - c0, row - r0
    top = heatmap[r0, c0] * (1 - fc) + heatmap[r0, c0 + 1] * fc
    bottom = heatmap[r0 + 1, c0] * (1 - fc) + heatmap[r0 + 1, c0 + 1] * fc
    sampled: np.ndarray = top * (1 - fr) + bottom * fr
    return sampled


@dataclass
class Analysed:
    pair: tuple[Labelled, Labelled]
    paths: list[Path]
    result: StudyResult
    crops: dict[str, tuple[int, int, int, int]]  # per SOP Instance UID, source grid
    lesion_heat: float  # heatmap peak of the image(s) with a located lesion


def test_demo_heatmaps_on_real_studies(demo_weights: Path, tmp_path: Path) -> None:
    """Left + right MLO of WOMEN women as one study each, through the demo engine; then the
    result objects of one study and its overlay of the lesion image as a PNG artefact."""
    pairs = sample_women()
    assert len(pairs) >= min(WOMEN, 3), f"only {len(pairs)} women with both breasts"
    engine = Predictor(demo_weights, device="cpu")
    assert engine.working_size == DEMO_WORKING_SIZE
    started = time.monotonic()
    rng = np.random.default_rng(20261122)
    findings = 0
    heat_peaks: list[float] = []
    breast_scores: list[float] = []
    worst_resampling = 0.0
    analysed: list[Analysed] = []
    for number, pair in enumerate(pairs):
        patient = SyntheticPatient()
        first = wrap(pair[0].name, tmp_path / str(number), patient)
        study_uid = str(dcmread(first, stop_before_pixels=True).StudyInstanceUID)
        paths = [first, wrap(pair[1].name, tmp_path / str(number), patient, study_uid)]
        sources = study_sources(paths)
        assert sources.kind == "mammography" and len(sources.images) == 2
        by_uid = {image.sop_instance_uid: image for image in sources.images}
        lesioned = {item.laterality for item in pair if item.lesions}
        result = analyse_images(engine, study_uid, sources.images)
        assert result.study_instance_uid == study_uid
        assert result.model.validated_for_clinical_use is False
        assert {b.laterality for b in result.breasts} == {"L", "R"}
        assert all(0.0 <= b.score <= 1.0 for b in result.breasts)
        assert 0.0 <= result.overall_score <= 1.0
        breast_scores += [b.score for b in result.breasts]
        assert {i.sop_instance_uid for i in result.images} == set(by_uid)
        # the same (deterministic) preprocessing and network the analysis ran, kept in the
        # model grid, to check the way back to the source grid
        predicted = {p.image.sop_instance_uid: p for p in predict_images(engine, sources.images)}
        crops: dict[str, tuple[int, int, int, int]] = {}
        lesion_heat = 0.0
        for image in result.images:
            source = by_uid[image.sop_instance_uid]
            assert image.laterality == source.laterality and image.view == "MLO"
            heat = image.heatmap
            assert heat.shape == source.image.shape == (SIZE, SIZE)
            assert np.isfinite(heat).all()
            assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0
            geometry = predicted[image.sop_instance_uid].geometry
            box = source_crop(geometry)
            top, left, bottom, right = box
            outside = np.ones(heat.shape, dtype=bool)
            outside[top:bottom, left:right] = False
            assert not heat[outside].any(), f"heat outside the crop of {image.laterality}"
            crops[image.sop_instance_uid] = box
            # inside the crop the source heatmap is the model-grid one (times the score) at
            # the mapped point: a wrong flip, offset or scale would move the heat
            prediction = predicted[image.sop_instance_uid].prediction
            model_heat = prediction.heatmap * prediction.score
            rows = rng.integers(top, bottom, 400)
            columns = rng.integers(left, right, 400)
            points = [Point(float(c), float(r)) for r, c in zip(rows, columns, strict=True)]
            expected = model_heat_at(model_heat, [geometry.to_model(p) for p in points])
            error = float(np.abs(heat[rows, columns] - expected).max())
            worst_resampling = max(worst_resampling, error / max(float(model_heat.max()), 1e-6))
            assert error <= 0.02 * float(model_heat.max()) + 1e-6, (image.laterality, error)
            heat_peaks.append(float(heat.max()))
            if image.laterality in lesioned:
                lesion_heat = max(lesion_heat, float(heat.max()))
            for finding in image.findings:
                findings += 1
                centre = finding.region.center
                assert -0.5 <= centre.column <= SIZE - 0.5, (image.laterality, centre)
                assert -0.5 <= centre.row <= SIZE - 0.5, (image.laterality, centre)
                assert 0.0 <= finding.score <= 1.0
        analysed.append(Analysed(pair, paths, result, crops, lesion_heat))
    elapsed = time.monotonic() - started
    print(
        f"\nmini-MIAS demo engine: {len(pairs)} studies, {2 * len(pairs)} images in "
        f"{elapsed:.1f} s; {findings} findings at the operating threshold; heatmap peak "
        f"median {statistics.median(heat_peaks):.3f} (max {max(heat_peaks):.3f}); breast "
        f"scores {min(breast_scores):.3f}-{max(breast_scores):.3f}; worst source-vs-model "
        f"heat difference {100 * worst_resampling:.2f}% of the peak (phantom-trained demo "
        "model: the heat itself means nothing on real images)"
    )
    # the overlay a person looks at: the study whose lesion image shows the most heat
    shown = max(analysed, key=lambda item: item.lesion_heat)
    save_overlay(shown.paths, shown.result, shown.pair, shown.crops)


def save_overlay(
    paths: list[Path],
    result: StudyResult,
    pair: tuple[Labelled, Labelled],
    crops: dict[str, tuple[int, int, int, int]],
) -> None:
    """All result objects of one study; the SC of its lesion image saved as the one PNG."""
    sources = {str(ds.SOPInstanceUID): ds for ds in (dcmread(path) for path in paths)}
    objects = build_result_objects(sources, result, ResultsSettings(), "BREASTNODE", 1)
    overlays = [o for o in objects if o.SOPClassUID == SECONDARY_CAPTURE]
    # TID 1500 report, Mammography CAD SR, one overlay per image (no GSPS by default)
    assert len(objects) == 2 + len(result.images) and len(overlays) == len(result.images)
    peaks = {str(i.laterality): float(i.heatmap.max()) for i in result.images}
    lesion_image = max((item for item in pair if item.lesions), key=lambda i: peaks[i.laterality])
    [source] = [ds for ds in sources.values() if ds.ImageLaterality == lesion_image.laterality]
    [sc] = [
        o
        for o in overlays
        if o.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    ]
    assert sc.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE)
    assert sc.StudyInstanceUID == source.StudyInstanceUID and sc.PatientID == source.PatientID
    rgb = np.asarray(sc.pixel_array)
    assert rgb.shape == (SIZE, SIZE, 3)
    # no colour outside the breast crop (below the burned-in text at the top): the overlay
    # puts the heat where the heatmap, in the source grid, has it
    top, left, bottom, right = crops[str(source.SOPInstanceUID)]
    outside = np.ones((SIZE, SIZE), dtype=bool)
    outside[top:bottom, left:right] = False
    outside[:TEXT_ROWS] = False
    channels = rgb[outside].astype(np.int16)
    grey = (channels[:, 0] == channels[:, 1]) & (channels[:, 1] == channels[:, 2])
    assert grey.all(), f"{int((~grey).sum())} coloured pixels outside the crop"
    folder = artifact_dir()
    for stale in folder.glob("mini-mias-overlay-*.png"):
        stale.unlink()  # exactly one mini-MIAS overlay in the artefact folder
    target = folder / f"mini-mias-overlay-{lesion_image.name}.png"
    Image.fromarray(rgb).save(target)
    assert target.is_file()
    with Image.open(target) as saved:
        assert saved.size == (SIZE, SIZE)
    print(f"\noverlay of {lesion_image.name} ({lesion_image.laterality} MLO) saved to {target}")


def test_findings_stay_on_the_breast(demo_weights: Path) -> None:
    """Every heatmap peak on every image in the folder lies inside the breast crop, so inside
    the image: at threshold 0 (every peak's geometry is checked) and at the operating one."""
    engine = Predictor(demo_weights, device="cpu")
    operating = engine.manifest.operating_threshold
    started = time.monotonic()
    found = {0.0: 0, operating: 0}
    off_crop: dict[float, list[str]] = {0.0: [], operating: []}
    off_image: dict[float, list[str]] = {0.0: [], operating: []}
    items = list(LABELS.values())
    for start in range(0, len(items), 16):  # a few images in memory at a time
        batch = [
            # display values exactly as the product makes them (checked in the first test)
            AnalysisImage(item.name, expected_display(png_pixels(item.name)), item.laterality)
            for item in items[start : start + 16]
        ]
        for predicted in predict_images(engine, batch):
            top, left, bottom, right = source_crop(predicted.geometry)
            for threshold in found:
                for finding in image_result(predicted, threshold, "region").findings:
                    found[threshold] += 1
                    centre = finding.region.center
                    where = f"{predicted.image.sop_instance_uid} at {centre}"
                    if not (
                        -0.5 <= centre.column <= SIZE - 0.5 and -0.5 <= centre.row <= SIZE - 0.5
                    ):
                        off_image[threshold].append(where)
                    if not (left - 1 <= centre.column <= right and top - 1 <= centre.row <= bottom):
                        off_crop[threshold].append(f"{where}, crop {(top, left, bottom, right)}")
    print(f"\nmini-MIAS heatmap peaks: {len(items)} images in {time.monotonic() - started:.1f} s")
    for threshold, count in found.items():
        print(
            f"  threshold {threshold}: {count} findings, {len(off_crop[threshold])} outside the "
            f"breast crop, {len(off_image[threshold])} outside the image"
        )
    for where in off_image[0.0]:
        print(f"  outside the image: {where}")
    assert not any(off_crop.values()) and not any(off_image.values())
