"""The walkthrough's own sample study shows a found lesion.

``breastnode sample-study`` draws its SYNTHETIC phantoms in millimetres on a full-field
detector, so the breast keeps its size and the lesion is 5-15 mm across at any pixel count.
Fresh sample studies (new seeds on every run, printed so a failure can be replayed) at the
default size (1024 x 832) and at full field (3328 x 2560) go through the node's own sources,
preprocessing and the demo model: the lesion breast scores higher, its strongest mark is
within 10 mm of the lesion, and the healthy breast has at most one mark. Figures printed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from models.serving.inference import Predictor
from models.serving.preprocess import otsu_threshold
from models.serving.sources import study_sources
from models.serving.study import analyse_images
from models.synthetic.phantoms import DETECTOR_MM, LESION_DIAMETER_MM, PhantomView
from models.synthetic.samples import MARK, sample_views, write_sample_study

SIZES = ((1024, 832), (3328, 2560))
STUDIES = 4  # per size, the lesion alternately left and right


@dataclass(frozen=True)
class Outcome:
    size: tuple[int, int]
    seed: int
    side: str
    scores: dict[str, float]
    marks: dict[str, int]
    distances: list[float]  # per lesion view: its nearest mark, mm (inf: none)
    strongest: float  # the lesion breast's strongest mark to its view's lesion, mm


def breast_area_mm2(view: PhantomView, cell_mm: float = 2.0) -> float:
    """The breast's area, thresholded on a 2 mm grid: per pixel, the quantum noise (larger
    on smaller pixels) moved Otsu's threshold by up to 7% of the area between sizes."""
    step = max(1, round(cell_mm / view.pixel_spacing_mm))
    rows, columns = (s // step * step for s in view.image.shape)
    blocks = view.image[:rows, :columns].reshape(rows // step, step, columns // step, step)
    means = blocks.mean(axis=(1, 3))
    return float((means > otsu_threshold(means)).sum()) * (step * view.pixel_spacing_mm) ** 2


def tissue_spread(view: PhantomView, cell_mm: float = 2.0) -> float:
    """The texture's standard deviation on a 2 mm grid, inside the breast, off the lesion."""
    step = max(1, round(cell_mm / view.pixel_spacing_mm))
    rows, columns = (s // step * step for s in view.image.shape)
    blocks = view.image[:rows, :columns].reshape(rows // step, step, columns // step, step)
    means = blocks.mean(axis=(1, 3))
    inside = means > 0.2
    if view.lesion is not None:
        y, x = np.mgrid[0 : means.shape[0], 0 : means.shape[1]]
        centre = view.lesion.center
        reach = 3 * view.lesion.radius_px / step
        inside &= np.hypot(x - centre.column / step, y - centre.row / step) > reach
    return float(means[inside].std())


def test_the_sample_is_drawn_in_millimetres_at_every_size() -> None:
    [seed] = (int(s) for s in np.random.SeedSequence().generate_state(1))
    by_size = {size: sample_views("L", size, seed) for size in ((256, 192), *SIZES)}
    for size, views in by_size.items():
        spacing = views[0].pixel_spacing_mm
        assert spacing == pytest.approx(max(DETECTOR_MM[0] / size[0], DETECTOR_MM[1] / size[1]))
        for view in views[2:]:  # the left views carry the lesion
            assert view.lesion is not None
            diameter = 2 * view.lesion.radius_mm
            assert LESION_DIAMETER_MM[0] <= diameter <= LESION_DIAMETER_MM[1], seed
            assert view.lesion.radius_px * spacing == pytest.approx(view.lesion.radius_mm)
    assert by_size[(3328, 2560)][0].pixel_spacing_mm == pytest.approx(0.1)
    # the same draw (the first view: later ones follow texture draws of other sizes) keeps
    # its breast: the same area in mm^2 at the default and the full size
    small, large = by_size[(1024, 832)][0], by_size[(3328, 2560)][0]
    # (within 10%: 53 fresh draws differed by at most 6.2%; pixel-sized drawing would differ
    # tenfold)
    assert breast_area_mm2(small) == pytest.approx(breast_area_mm2(large), rel=0.1), seed
    # and its texture looks alike: the same spread on a 2 mm grid (pixel-sized grain would
    # average away at full field)
    spreads = {size: statistics.mean(map(tissue_spread, views)) for size, views in by_size.items()}
    assert max(spreads.values()) < 1.35 * min(spreads.values()), (seed, spreads)


def analysed(
    engine: Predictor, folder: Path, size: tuple[int, int], seed: int, side: str
) -> Outcome:
    paths = write_sample_study(folder, side, size, seed)
    truth = {(v.laterality, v.view): v for v in sample_views(side, size, seed)}
    sources = study_sources(paths)
    assert all(MARK in str(ds.ImageComments) for ds in sources.datasets.values())
    result = analyse_images(engine, "1.2.826.0.1.3680043.8.498.14", sources.images)
    assert result.model.validated_for_clinical_use is False
    marks = {"L": 0, "R": 0}
    distances: list[float] = []
    strongest = (0.0, math.inf)
    for image in result.images:
        assert image.laterality is not None and image.view is not None
        marks[image.laterality] += len(image.findings)
        view = truth[(image.laterality, image.view)]
        if view.lesion is None:
            continue
        lesion = view.lesion.center
        apart = [
            view.pixel_spacing_mm
            * math.hypot(f.region.center.column - lesion.column, f.region.center.row - lesion.row)
            for f in image.findings
        ]
        distances.append(min(apart, default=math.inf))
        for finding, mm in zip(image.findings, apart, strict=True):
            strongest = max(strongest, (finding.score, -mm))
    scores = {b.laterality: b.score for b in result.breasts}
    return Outcome(size, seed, side, scores, marks, distances, -strongest[1])


@pytest.mark.timeout(900)
def test_demo_model_finds_the_sample_lesion_at_default_and_full_size(
    demo_weights: Path, tmp_path: Path
) -> None:
    engine = Predictor(demo_weights, device="cpu")
    seeds = [int(s) for s in np.random.SeedSequence().generate_state(len(SIZES) * STUDIES)]
    outcomes = []
    for number, seed in enumerate(seeds):
        size = SIZES[number // STUDIES]
        side = "LR"[number % 2]
        outcomes.append(analysed(engine, tmp_path / f"study{number}", size, seed, side))
    for size in SIZES:
        mine = [o for o in outcomes if o.size == size]
        others = ["R" if o.side == "L" else "L" for o in mine]
        found = [d for o in mine for d in o.distances]
        print(
            f"\nsample {size[0]}x{size[1]}, {len(mine)} studies: lesion breast scores "
            f"{[round(o.scores[o.side], 3) for o in mine]}, healthy "
            f"{[round(o.scores[h], 3) for o, h in zip(mine, others, strict=True)]}; "
            f"marks on the lesion breast {[o.marks[o.side] for o in mine]}, on the healthy "
            f"{[o.marks[h] for o, h in zip(mine, others, strict=True)]}; strongest mark "
            f"{[round(o.strongest, 1) for o in mine]} mm from the lesion; lesion views marked "
            f"within 10 mm {sum(d <= 10 for d in found)}/{len(found)}"
        )
    for outcome in outcomes:
        healthy = "R" if outcome.side == "L" else "L"
        assert outcome.scores[outcome.side] > outcome.scores[healthy], outcome
        assert outcome.strongest <= 10.0, outcome
        assert outcome.marks[healthy] <= 1, outcome
