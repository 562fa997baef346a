"""The evaluation report's lesion detection, without a model: a hand-made evaluation whose
FROC breakdowns are known goes into figures.json and the page unchanged, and the example
images show the annotated lesions (green) beside the model's marks (red)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from models.serving.checkpoint import TASKS, Manifest
from models.training.evaluation import Evaluation, Example
from models.training.froc import ImageMarks, Lesion, Mark
from models.training.localisation import Localisation
from models.training.metrics import binary_report, multiclass_report
from models.training.report import write_report
from models.training.report_lesions import draw_example

ROWS, COLUMNS = 64, 48
LESION = Lesion(30, 20, 6, kind="mass")


def disc(lesion: Lesion) -> np.ndarray:
    rows, columns = np.mgrid[0:ROWS, 0:COLUMNS]
    inside = (columns - lesion.column) ** 2 + (rows - lesion.row) ** 2 <= lesion.radius**2
    result: np.ndarray = inside.astype(np.uint8)
    return result


def example(with_lesion: bool, mask: bool = True) -> Example:
    return Example(
        image=np.full((ROWS, COLUMNS), 0.3, dtype=np.float32),
        heatmap=np.zeros((ROWS, COLUMNS), dtype=np.float32),
        truth="abnormal" if with_lesion else "normal",
        score=0.8,
        lesion_mask=disc(LESION) if with_lesion and mask else None,
        lesions=(LESION,) if with_lesion else (),
        marks=(Mark(31, 21, 0.8), Mark(10, 55, 0.4)),
    )


def rendered(item: Example) -> tuple[np.ndarray, Figure]:
    """The example drawn filling a figure of 10 x 10 screen pixels per model pixel."""
    figure = Figure(figsize=(COLUMNS / 10, ROWS / 10), dpi=100)
    draw_example(figure.add_axes((0, 0, 1, 1)), item)
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    with Image.open(png) as picture:
        pixels = np.asarray(picture.convert("RGB")).astype(int)
    assert pixels.shape[:2] == (ROWS * 10, COLUMNS * 10)
    return pixels, figure


def pure_green(pixels: np.ndarray) -> np.ndarray:
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    result: np.ndarray = (green > 200) & (red < 90) & (blue < 90)
    return result


def polar(figure: Figure, pixels: np.ndarray, point: Mark | Lesion) -> tuple[np.ndarray, ...]:
    """Every screen pixel's distance from a model-grid point (in model pixels) and angle."""
    axes = figure.axes[0]
    x, y = axes.transData.transform((point.column, point.row))
    rows, columns = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    centre_row = pixels.shape[0] - y  # display y counts from the bottom
    distance = np.hypot(columns - x, rows - centre_row) / 10
    return distance, np.arctan2(rows - centre_row, columns - x) + np.pi


@pytest.mark.parametrize("mask", [True, False], ids=["mask outline", "circle"])
def test_the_lesion_outline_is_drawn_on_the_lesion(mask: bool) -> None:
    item = example(True, mask)
    pixels, figure = rendered(item)
    green = pure_green(pixels)
    distance, angle = polar(figure, pixels, LESION)
    assert green.sum() > 100  # a ring of about 2 pi 60 screen pixels
    assert (np.abs(distance[green] - LESION.radius) < 1.5).all()  # on the lesion's edge
    octants = np.unique(np.floor(angle[green] / (np.pi / 4)) % 8)
    assert len(octants) == 8  # all the way round
    # the marks in red: the hit on the lesion and the false mark below it
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    hit, false = (polar(figure, pixels, mark)[0] for mark in item.marks)
    assert red[hit < 1].any() and red[false < 1].any()
    assert not red[(hit > 6) & (false > 6)].any()  # (the scores are written beside them)


def test_without_a_lesion_nothing_is_green() -> None:
    pixels, _ = rendered(example(False))
    assert not pure_green(pixels).any()


def localisation() -> Localisation:
    """Two masses hit (0.9, 0.7), a calcification missed, false marks 0.8 and 0.6: masses
    1.0 and calcification 0.0 at 1 false mark per image; density b holds the masses."""
    images = [
        ImageMarks(
            [Mark(10, 10, 0.9), Mark(40, 40, 0.7), Mark(5, 60, 0.8)],
            [Lesion(10, 10, 5, kind="mass"), Lesion(40, 40, 5, kind="mass")],
            density="b",
        ),
        ImageMarks([Mark(5, 5, 0.6)], [Lesion(30, 30, 4, kind="calcification")], "d"),
        ImageMarks([], []),
    ]
    return Localisation.of(images)


def evaluation(found: Localisation | None) -> Evaluation:
    labels = TASKS["normal_abnormal"]
    manifest = Manifest("synthetic", "0", "normal_abnormal", labels, "resnet18", (ROWS, COLUMNS),
                        0.5, "0" * 64, False, "synthetic")  # fmt: skip
    truth = np.array([0, 1, 0, 1, 1, 0])
    scores = np.array([0.2, 0.8, 0.6, 0.7, 0.3, 0.1])
    probabilities = np.column_stack([1 - scores, scores])
    positives = truth == labels.index("abnormal")
    return Evaluation(
        manifest=manifest,
        truth=truth,
        probabilities=probabilities,
        scores=scores,
        binary=binary_report(positives, scores, 0.5, rounds=20),
        multiclass=multiclass_report(truth, probabilities, labels, rounds=20),
        patients=6,
        examples=[example(True), example(False)] if found else [example(False)],
        localisation=found,
    )


def test_the_report_carries_the_breakdowns(tmp_path: Path) -> None:
    write_report(evaluation(localisation()), tmp_path / "md", style="md")
    figures = json.loads((tmp_path / "md" / "figures.json").read_text())["froc"]
    assert (figures["lesions"], figures["images"], figures["density_images"]) == (3, 3, 2)
    by_type = figures["by_lesion_type"]
    assert list(by_type) == ["mass", "calcification"]
    assert by_type["mass"]["lesions"] == 2 and by_type["calcification"]["lesions"] == 1
    assert by_type["mass"]["sensitivity_at_false_marks_per_image"]["1.0"] == 1.0
    assert by_type["calcification"]["sensitivity_at_false_marks_per_image"]["1.0"] == 0.0
    # unrounded: 2 of 3 lesions at 1 false mark per image, 2 false marks on 3 images
    assert figures["sensitivity_at_false_marks_per_image"]["1.0"] == 2 / 3
    assert figures["curve"]["false_marks_per_image"][-1] == 2 / 3
    by_density = figures["by_density"]
    assert list(by_density) == ["b", "d"]
    assert by_density["b"]["images"] == 1 and by_density["b"]["lesions"] == 2
    assert by_density["b"]["sensitivity_at_false_marks_per_image"] == {
        "0.25": 0.5, "0.5": 0.5, "1.0": 1.0, "2.0": 1.0,
    }  # fmt: skip
    assert by_density["d"]["sensitivity_at_false_marks_per_image"]["2.0"] == 0.0

    page = (tmp_path / "md" / "report.md").read_text()
    assert "## Lesion detection by lesion type" in page
    assert "| mass | 2 | 3 | 0.500 | 1.000 | 1.000 | 1.000 |" in page
    assert "| calcification | 1 | 3 | 0.000 | 0.000 | 0.000 | 0.000 |" in page
    assert "## Lesion detection by breast density" in page
    assert "| b | 2 | 1 | 0.500 | 0.500 | 1.000 | 1.000 |" in page
    with Image.open(tmp_path / "md" / "heatmaps.png") as picture:
        assert pure_green(np.asarray(picture.convert("RGB")).astype(int)).sum() > 20

    html = write_report(evaluation(localisation()), tmp_path / "html").read_text()
    assert "<td>mass</td><td>2</td><td>3</td><td>0.500</td>" in html
    assert "<td>b</td><td>2</td><td>1</td>" in html


def test_a_report_without_annotations_has_no_breakdown(tmp_path: Path) -> None:
    write_report(evaluation(None), tmp_path, style="md")
    assert json.loads((tmp_path / "figures.json").read_text())["froc"] is None
    assert "Lesion detection" not in (tmp_path / "report.md").read_text()
    with Image.open(tmp_path / "heatmaps.png") as picture:
        assert not pure_green(np.asarray(picture.convert("RGB")).astype(int)).any()
