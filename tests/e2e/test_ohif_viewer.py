"""What a radiologist sees in OHIF (the prebuilt `@ohif/app` from the npm registry, 3.13),
served against a real Orthanc's DICOMweb plugin, in Debian's headless Chromium.

The node's result objects for a SYNTHETIC four-view study go into Orthanc beside their
sources. Opening the TID 1500 report draws every finding and every breast's assessment on its
source image with its label (what, score, category); accepting OHIF's offer to track them puts
each into OHIF's measurement panel with the same label. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import Comprehensive3DSRStorage, JPEGLSLossless, SecondaryCaptureImageStorage

from models.serving.aggregate import category
from models.synthetic import write
from node.config import ResultsSettings
from node.results.build import build_result_objects
from node.results.sr import FINDING_TYPES, SIDE_NAMES, label
from tests.support.orthanc import Orthanc
from tests.support.results import Case, artifact_dir, mammography_case
from tests.support.viewer import (
    console_lines,
    dicomweb_plugin_config,
    require_viewer,
    serve_ohif,
)

pytestmark = [pytest.mark.orthanc, pytest.mark.timeout(600)]


def expected_labels(case: Case) -> list[str]:
    """The label of every group of the report, as the node writes it (node.results.sr)."""
    threshold = case.result.model.operating_threshold
    labels = [label(SIDE_NAMES[b.laterality], b.score, b.category) for b in case.result.breasts]
    for image in case.result.images:
        for finding in image.findings:
            side = SIDE_NAMES[finding.laterality or image.laterality or ""].lower()
            what = f"{FINDING_TYPES[finding.kind].meaning} ({side})"
            labels.append(label(what, finding.score, category(finding.score, threshold)))
    return labels


@pytest.fixture
def study_in_orthanc(tmp_path: Path) -> Iterator[tuple[Orthanc, Case, list]]:
    require_viewer()
    case = mammography_case()
    orthanc = Orthanc(tmp_path / "orthanc", extra_config=dicomweb_plugin_config()).start()
    try:
        for ds in case.sources:
            orthanc.upload(write(ds, tmp_path / "sources"))
        sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
        objects = build_result_objects(sources, case.result, ResultsSettings(), "BREASTNODE", 1)
        for number, ds in enumerate(objects):
            path = tmp_path / "results" / f"{number}.dcm"
            path.parent.mkdir(exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            orthanc.upload(path)
        yield orthanc, case, objects
    finally:
        orthanc.stop()


def wait_until(check: Callable[[], bool], timeout: float, what: str, logs: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(
        f"OHIF did not show {what} in {timeout:.0f} s; console:\n" + (console_lines(logs))
    )


@contextlib.contextmanager
def ohif_page(orthanc: Orthanc, logs: list[str]) -> Iterator[tuple[str, Any]]:
    """OHIF in front of ``orthanc``, and a 1600x1000 page of headless Chromium."""
    from playwright.sync_api import sync_playwright

    _dist, chromium = require_viewer()
    with serve_ohif(orthanc.http_port) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: logs.append(f"page error: {e}"))
            yield url, page
        finally:
            browser.close()


def skip_tour(page: Any) -> None:
    """OHIF's first-visit tour covers the page until it is dismissed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.get_by_text("Skip all").click(timeout=10_000)


def open_report(page: Any, url: str, report: Dataset) -> None:
    """The study in OHIF, then the report opened from its thumbnail (a double click)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{url}/viewer?StudyInstanceUIDs={report.StudyInstanceUID}")
    thumbnail = page.get_by_text(str(report.SeriesDescription)).first
    thumbnail.wait_for(timeout=120_000)
    skip_tour(page)
    try:
        thumbnail.dblclick(timeout=20_000)
    except PlaywrightTimeout:  # the welcome tour came later than skip_tour waited for
        skip_tour(page)
        thumbnail.dblclick()


def test_ohif_draws_the_reports_findings_and_lists_them(
    study_in_orthanc: tuple[Orthanc, Case, list],
) -> None:
    orthanc, case, objects = study_in_orthanc
    [report] = [o for o in objects if o.SOPClassUID == Comprehensive3DSRStorage]
    labels = expected_labels(case)
    assert len(labels) == 6  # two breasts, two findings on each of the two left views
    artifacts = artifact_dir()
    logs: list[str] = []
    with ohif_page(orthanc, logs) as (url, page):
        open_report(page, url, report)

        # The SR viewport shows the report on the image in view (the left CC view, where
        # the report draws the left breast's assessment): each group drawn and labelled.
        on_view = [t for t in labels if "Right breast" not in t]
        wait_until(
            lambda: all(t in page.inner_text("body") for t in on_view),
            120,
            "the report's labels on the image",
            logs,
        )
        page.screenshot(path=str(artifacts / "ohif-tid1500-findings.png"))
        assert "Probability of cancer: 0.86" in page.inner_text("body")
        assert not [line for line in logs if "page error" in line], console_lines(logs)

        # Tracking them: OHIF rehydrates every group into its measurement panel.
        page.get_by_role("button", name="Yes").click(timeout=60_000)
        tab = page.locator("[data-cy=trackedMeasurements-btn]")
        if not tab.is_visible():
            page.mouse.click(1588, 64)  # the collapsed right panel's opener, top right
        tab.click(timeout=30_000)
        wait_until(
            lambda: all(t in page.inner_text("body") for t in labels),
            60,
            "every group in the measurement panel",
            logs,
        )
        panel = page.inner_text("body")
        assert "Measurements (4)" in panel  # the breasts and the masses
        assert "Additional Findings (2)" in panel  # the calcification points
        page.screenshot(path=str(artifacts / "ohif-measurement-panel.png"))


# Patient Orientation of each view as mammography units write it (row, column directions)
ORIENTATION = {
    ("R", "CC"): ["P", "L"],
    ("L", "CC"): ["A", "R"],
    ("R", "MLO"): ["P", "FL"],
    ("L", "MLO"): ["A", "FR"],
}
VIEWS = {"cranio-caudal": "CC", "medio-lateral oblique": "MLO"}


def test_overlays_hang_by_breast_and_view_in_ohifs_mammography_protocol(
    tmp_path: Path,
) -> None:
    """The overlays alone, opened with OHIF's mammography hanging protocol (`@ohif/hpMammo`,
    2x2: R CC, L CC above R MLO, L MLO): each CC overlay lands in its own breast's CC
    viewport and the left MLO in the left MLO one. The right MLO cannot: OHIF 3.13's RMLO
    rule requires a Patient Orientation without P, which every right MLO has (P\\FL), so
    that viewport falls back to another image, as it does for the source images."""
    require_viewer()
    case = mammography_case()
    for ds in case.sources:
        ds.PatientOrientation = ORIENTATION[(ds.ImageLaterality, ds.ViewPosition)]
    orthanc = Orthanc(tmp_path / "orthanc", extra_config=dicomweb_plugin_config()).start()
    logs: list[str] = []
    try:
        for ds in case.sources:
            orthanc.upload(write(ds, tmp_path / "sources"))
        sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
        objects = build_result_objects(sources, case.result, ResultsSettings(), "BREASTNODE", 1)
        overlays = [o for o in objects if o.SOPClassUID == SecondaryCaptureImageStorage]
        for number, ds in enumerate(overlays):
            orthanc.upload(write(ds, tmp_path / "overlays", f"{number}.dcm"))
        names = {
            str(o.SOPInstanceUID): f"{o.ImageLaterality} {VIEWS[o.ViewCodeSequence[0].CodeMeaning]}"
            for o in overlays
        }
        series = ",".join(sorted({str(o.SeriesInstanceUID) for o in overlays}))
        assert len(series.split(",")) == 4  # one series per breast and view
        study = case.result.study_instance_uid
        with ohif_page(orthanc, logs) as (url, page):
            page.goto(
                f"{url}/viewer?StudyInstanceUIDs={study}&SeriesInstanceUIDs={series}"
                "&hangingprotocolId=@ohif/hpMammo"
            )
            page.locator("[data-cy=viewport-pane]").nth(3).wait_for(timeout=120_000)
            skip_tour(page)
            shown: dict[tuple[int, int], str] = {}

            def hung() -> bool:
                placed = page.evaluate(VIEWPORT_IMAGES)
                shown.clear()
                for left, top, image_id in placed:
                    uid = next((u for u in names if image_id and u in image_id), None)
                    if uid:
                        shown[(left, top)] = names[uid]
                return len(shown) == 4

            wait_until(hung, 120, "four overlays in the 2x2 layout", logs)
            page.screenshot(path=str(artifact_dir() / "ohif-hanging-overlays.png"))
        by_place = [shown[key] for key in sorted(shown, key=lambda k: (k[1], k[0]))]
        upper_left, upper_right, _lower_left, lower_right = by_place
        assert (upper_left, upper_right) == ("R CC", "L CC"), by_place
        assert lower_right == "L MLO", by_place
    finally:
        orthanc.stop()


# Where each of OHIF's cornerstone viewports is on the page, and which image it shows.
VIEWPORT_IMAGES = """() => window.cornerstone.getRenderingEngines()[0].getViewports().map(v => {
  const box = v.element.getBoundingClientRect();
  return [Math.round(box.left), Math.round(box.top), v.getCurrentImageId()];
})"""


def test_a_full_size_sample_study_in_ohif(demo_weights: Path, tmp_path: Path) -> None:
    """At the size of a real mammogram: the walkthrough's SYNTHETIC sample study at
    3328x2560, analysed by the demo model, its overlays sent as the node sends them to a PACS
    that takes JPEG-LS. OHIF draws the report's finding on the lesion's view, and decodes and
    shows the full-size JPEG-LS overlay of that view."""
    from models.serving.inference import Predictor
    from models.serving.sources import study_sources
    from models.serving.study import analyse_images
    from models.synthetic.samples import sample_views, write_sample_study
    from node.dicom.transfer_syntaxes import encoded, inspect

    require_viewer()
    size, seed = (3328, 2560), 2026
    paths = write_sample_study(tmp_path / "study", "L", size, seed)
    truth = {(v.laterality, v.view): v for v in sample_views("L", size, seed)}
    sources = study_sources(paths)
    result = analyse_images(Predictor(demo_weights, device="cpu"), "2.25.1", sources.images)
    objects = build_result_objects(sources.datasets, result, ResultsSettings(), "BREASTNODE", 1)
    [report] = [o for o in objects if o.SOPClassUID == Comprehensive3DSRStorage]
    [cc] = [i for i in result.images if (i.laterality, i.view) == ("L", "CC")]
    assert cc.findings, "the demo model found nothing on the lesion's CC view"
    view = truth[("L", "CC")]
    assert view.lesion is not None
    nearest_mm = min(
        view.pixel_spacing_mm
        * math.hypot(
            f.region.center.column - view.lesion.center.column,
            f.region.center.row - view.lesion.center.row,
        )
        for f in cc.findings
    )
    assert nearest_mm <= 10.0, nearest_mm
    [overlay] = [
        o
        for o in objects
        if o.SOPClassUID == SecondaryCaptureImageStorage and "HEATMAP L CC" in o.SeriesDescription
    ]
    orthanc = Orthanc(tmp_path / "orthanc", extra_config=dicomweb_plugin_config()).start()
    logs: list[str] = []
    try:
        for path in paths:
            orthanc.upload(Path(path))
        for number, ds in enumerate(objects):
            path = write(ds, tmp_path / "results", f"{number}.dcm")
            if ds.SOPClassUID == SecondaryCaptureImageStorage:
                with encoded(inspect(path), JPEGLSLossless, tmp_path) as compressed:
                    orthanc.upload(compressed)
            else:
                orthanc.upload(path)
        with ohif_page(orthanc, logs) as (url, page):
            open_report(page, url, report)
            wait_until(
                lambda: "(left breast): " in page.inner_text("body"),
                120,
                "the finding's label on the left CC view",
                logs,
            )
            wait_until(lambda: image_rendered(page), 120, "the left CC view's pixels", logs)
            page.screenshot(path=str(artifact_dir() / "ohif-full-size-report.png"))
            page.get_by_text(str(overlay.SeriesDescription)).first.dblclick()
            shown: list[Any] = []

            def overlay_shown() -> bool:
                shown[:] = page.evaluate(SHOWN_IMAGE)
                return bool(shown) and str(overlay.SOPInstanceUID) in str(shown[0])

            wait_until(overlay_shown, 120, "the full-size JPEG-LS overlay", logs)
            page.screenshot(path=str(artifact_dir() / "ohif-full-size-overlay.png"))
        _image_id, dimensions, brightest = shown
        assert dimensions[:2] == [2560, 3328]  # columns, rows: decoded at full size
        assert brightest > 0  # pixels, not an empty frame
    finally:
        orthanc.stop()


def image_rendered(page: Any) -> bool:
    """The first viewport holds decoded pixels; then a moment for the canvas to draw them."""
    shown = page.evaluate(SHOWN_IMAGE)
    if not shown or shown[2] <= 0:
        return False
    page.wait_for_timeout(1500)
    return True


# The image in OHIF's active viewport: its id, its dimensions, and its brightest value.
SHOWN_IMAGE = """() => {
  const v = window.cornerstone.getRenderingEngines()[0].getViewports()[0];
  const data = v.getImageData && v.getImageData();
  if (!data) return [];
  const values = data.scalarData || data.voxelManager.getCompleteScalarDataArray();
  let top = 0;
  for (let i = 0; i < values.length; i += 997) top = Math.max(top, values[i]);
  return [v.getCurrentImageId(), data.dimensions, top];
}"""
