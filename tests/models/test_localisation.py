"""Evaluation with localisation: `models evaluate` gives the FROC of annotated test rows.

Test rows are the walkthrough's SYNTHETIC sample studies, whose lesions' places are known,
as circles in the manifest's annotations; the demo model, trained on such phantoms, should
find most of them at one false mark per image. The same rows without annotations give no
FROC, and a mark beside the lesion is no hit. The lesions are typed masses and the studies
given densities, so the breakdowns can be checked against the overall curve, and the
example images carry the lesions and marks the report draws.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from models.synthetic.samples import sample_views, write_sample_study
from models.training.annotations import Annotation, Circle
from models.training.dataset import Row
from models.training.evaluation import evaluate
from models.training.report import figures_json

SIZE = (1024, 832)


def sample_rows(folder: Path, seeds: range) -> list[Row]:
    rows = []
    for seed in seeds:
        side = "LR"[seed % 2]
        paths = write_sample_study(folder / f"study{seed}", side, SIZE, seed)
        for path, view in zip(paths, sample_views(side, SIZE, seed), strict=True):
            lesion = view.lesion
            circle = (
                Circle(lesion.center.column, lesion.center.row, lesion.radius_px)
                if lesion is not None
                else None
            )
            annotations = (Annotation(circle, "mass"),) if circle is not None else ()
            label = "lesion" if lesion is not None else "no lesion"
            woman = f"sample-{seed}"
            density = "b" if seed == 0 else "c"
            rows.append(
                Row(path, woman, woman, view.laterality, view.view, label, None, annotations,
                    density)
            )  # fmt: skip
    return rows


@pytest.mark.timeout(900)
def test_evaluate_gives_the_froc_of_annotated_rows(demo_weights: Path, tmp_path: Path) -> None:
    rows = sample_rows(tmp_path, range(3))
    evaluation = evaluate(demo_weights, rows, device="cpu", rounds=50)
    curve = evaluation.froc
    assert curve is not None
    assert (curve.lesions, curve.images) == (6, 12)  # two lesion views a study, four views
    print(f"\nFROC of the demo on 3 sample studies: {curve.at}")
    assert curve.at[1.0] >= 0.8  # measured: every lesion found with at most a few false marks
    figures = figures_json(evaluation)["froc"]
    assert figures["lesions"] == 6 and set(figures["sensitivity_at_false_marks_per_image"]) == {
        "0.25",
        "0.5",
        "1.0",
        "2.0",
    }
    # every lesion a mass: the mass curve is the overall one; density b is study 0 alone
    found = evaluation.localisation
    assert found is not None and list(found.by_lesion_type) == ["mass"]
    assert found.by_lesion_type["mass"].at == curve.at
    assert list(found.by_density) == ["b", "c"] and found.density_images == 12
    assert (found.by_density["b"].images, found.by_density["b"].lesions) == (4, 2)
    assert (found.by_density["c"].images, found.by_density["c"].lesions) == (8, 4)
    assert list(figures["by_density"]) == ["b", "c"]
    assert figures["by_lesion_type"]["mass"]["lesions"] == 6
    # the examples carry what the report draws: lesion outlines and the model's marks
    shown = [e for e in evaluation.examples if e.lesions]
    assert shown and all(e.lesion_mask is not None and e.lesion_mask.any() for e in shown)
    assert any(e.marks for e in evaluation.examples)
    assert sum(e.found() for e in shown) >= 1
    assert all(e.lesion_mask is None for e in evaluation.examples if not e.lesions)

    # no annotations: no FROC; annotations moved away from the lesions: nothing is found
    plain = [dataclasses.replace(row, annotations=()) for row in rows]
    assert evaluate(demo_weights, plain, device="cpu", rounds=20).froc is None
    moved = [
        dataclasses.replace(
            row,
            annotations=tuple(
                dataclasses.replace(
                    a, shape=Circle(a.shape.column, (a.shape.row + 400) % SIZE[0], a.shape.radius)
                )
                for a in row.annotations
                if isinstance(a.shape, Circle)
            ),
        )
        for row in rows
    ]
    away = evaluate(demo_weights, moved, device="cpu", rounds=20).froc
    assert away is not None and away.at[2.0] < curve.at[2.0]
