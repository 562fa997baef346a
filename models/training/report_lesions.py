"""The lesion-detection part of the evaluation report: FROC figures and their breakdowns
for ``figures.json`` and the page, and example images with the annotated lesions drawn
beside the model's marks, so a reader sees what was found and what was missed.

Kept apart from ``models.training.report`` (the score figures) to keep both short.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Circle, Rectangle

from models.training.evaluation import Evaluation, Example
from models.training.froc import FALSE_MARKS_PER_IMAGE, Froc

ANNOTATION_COLOUR = "lime"  # pure green: the jet heatmap blended at 0.35 never reaches it
MARK_COLOUR = "red"
LEGEND = (
    "green outline: annotated lesion; red cross: the model's mark, with its score"
    " (a mark on the outlined lesion finds it)"
)


def froc_figures(evaluation: Evaluation) -> dict[str, Any] | None:
    """The FROC as numbers (unrounded): lesions, images, sensitivity at each rate of false
    marks per image, the curve, and the same per lesion type (``by_lesion_type``) and per
    density (``by_density``, over ``density_images`` test images with a density)."""
    found = evaluation.localisation
    if found is None:
        return None
    return {
        **_curve_figures(found.froc),
        "by_lesion_type": {name: _curve_figures(c) for name, c in found.by_lesion_type.items()},
        "by_density": {name: _curve_figures(c) for name, c in found.by_density.items()},
        "density_images": found.density_images,
    }


def _curve_figures(curve: Froc) -> dict[str, Any]:
    return {
        "lesions": curve.lesions,
        "images": curve.images,
        "sensitivity_at_false_marks_per_image": {str(k): float(v) for k, v in curve.at.items()},
        "curve": {
            "false_marks_per_image": [float(v) for v in curve.false_marks_per_image],
            "sensitivity": [float(v) for v in curve.sensitivity],
        },
    }


def froc_lines(evaluation: Evaluation) -> list[str]:
    """The page's lesion-detection sections: the overall figure, then the breakdowns."""
    found = evaluation.localisation
    if found is None:
        return []
    curve = found.froc
    points = ", ".join(f"{v:.2f} at {k:g}" for k, v in curve.at.items())
    lines = [
        "",
        "## Lesion detection (FROC)",
        "",
        f"{curve.lesions} annotated lesions on {curve.images} test images. Lesion sensitivity "
        f"at false marks per image: {points}. A mark finds a lesion when its centre lies "
        "within the lesion's radius (or box) of it, in the model's grid.",
        "",
        "## Lesion detection by lesion type",
        "",
        f"Each type's lesions against the false marks of all {curve.images} test images (a "
        "false mark has no type). Few lesions make a figure uncertain: read it with its count.",
        "",
        *_table("lesion type", found.by_lesion_type),
    ]
    if found.by_density:
        lines += [
            "",
            "## Lesion detection by breast density",
            "",
            f"Each density's lesions and false marks over its own images ({found.density_images} "
            f"of {curve.images} test images have a density; only densities with a lesion shown).",
            "",
            *_table("density", found.by_density),
        ]
    return lines


def _table(group: str, curves: dict[str, Froc]) -> list[str]:
    rates = " | ".join(f"sensitivity at {rate:g}" for rate in FALSE_MARKS_PER_IMAGE)
    lines = [
        f"| {group} | lesions | images | {rates} |",
        "| --- | --- | --- |" + " --- |" * len(FALSE_MARKS_PER_IMAGE),
    ]
    for name, curve in curves.items():
        cells = " | ".join(f"{curve.at[rate]:.3f}" for rate in FALSE_MARKS_PER_IMAGE)
        lines.append(f"| {name} | {curve.lesions} | {curve.images} | {cells} |")
    return lines


def draw_example(axes: Axes, example: Example) -> None:
    """The image, its heatmap, the annotated lesions' outlines and the model's marks."""
    axes.imshow(example.image, cmap="gray", vmin=0, vmax=1)
    axes.imshow(example.heatmap.astype(np.float32), cmap="jet", alpha=0.35, vmin=0, vmax=1)
    rows, columns = example.image.shape
    if example.lesion_mask is not None and example.lesion_mask.any():
        axes.contour(
            example.lesion_mask.astype(np.float32),
            levels=[0.5],
            colors=ANNOTATION_COLOUR,
            linewidths=1.5,
        )
    elif example.lesions:  # no raster: the lesions' own circles and boxes
        for lesion in example.lesions:
            if lesion.box is not None:
                left, top, right, bottom = lesion.box
                patch: Circle | Rectangle = Rectangle(
                    (left, top), right - left, bottom - top, fill=False
                )
            else:
                patch = Circle((lesion.column, lesion.row), lesion.radius, fill=False)
            patch.set_edgecolor(ANNOTATION_COLOUR)
            patch.set_linewidth(1.5)
            axes.add_patch(patch)
    for mark in example.marks:
        axes.plot(mark.column, mark.row, "x", color=MARK_COLOUR, markersize=7, mew=1.5)
        axes.annotate(
            f"{mark.score:.2f}",
            (mark.column, mark.row),
            xytext=(4, 4),
            textcoords="offset points",
            color=MARK_COLOUR,
            fontsize=6,
        )
    axes.set_xlim(-0.5, columns - 0.5)
    axes.set_ylim(rows - 0.5, -0.5)  # marks near the edge do not widen the view
    title = f"truth {example.truth}\nscore {example.score:.3f}"
    if example.lesions:
        title += f", found {example.found()} of {len(example.lesions)} lesions"
    axes.set_title(title, fontsize=8)
    axes.axis("off")
