"""Breast composition from a density checkpoint (task ``density``: BI-RADS a-d), per breast.

A breast's composition is the class with the highest mean probability over its views
(CC and MLO see the same tissue from two sides; averaging is steadier than either view).
The result is attached to the malignancy model's breast results, so one report carries
both; a report that carries an unvalidated density model's composition (the demo one) is
itself marked not validated, so a validated malignancy model cannot lend it its standing.
Only a checkpoint of task ``density`` reports a composition: a dataset's own classes
(mini-MIAS F/G/D) are not BI-RADS categories and would be miscoded as such.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from models.serving.checkpoint import CheckpointError
from models.serving.inference import Predictor
from models.serving.result import COMPOSITIONS, StudyResult
from models.serving.study import AnalysisImage, predict_images

DENSITY_TASK = "density"


def check_density_engine(engine: Predictor) -> None:
    """Refuse a checkpoint that does not answer BI-RADS composition a-d."""
    if engine.manifest.task != DENSITY_TASK or tuple(engine.manifest.labels) != COMPOSITIONS:
        raise CheckpointError(
            f"a density checkpoint answers task {DENSITY_TASK!r} (classes a-d); "
            f"this one answers {engine.manifest.task!r}"
        )


def compositions(engine: Predictor, images: Sequence[AnalysisImage]) -> dict[str, str]:
    """Each breast's composition (L/R -> a-d) from the images that name their breast."""
    check_density_engine(engine)
    sided = [image for image in images if image.laterality in {"L", "R"}]
    if not sided:
        return {}
    per_side: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    for item in predict_images(engine, sided):
        per_side[str(item.image.laterality)].append(item.prediction.probabilities)
    return {
        side: COMPOSITIONS[int(np.mean(np.asarray(probabilities), axis=0).argmax())]
        for side, probabilities in per_side.items()
    }


def with_compositions(
    result: StudyResult, found: dict[str, str], validated: bool = True
) -> StudyResult:
    """``result`` with each breast's composition where one was found; ``validated``: whether
    the density model is validated for clinical use (if not, neither is the result)."""
    breasts = tuple(
        replace(breast, composition=found.get(breast.laterality)) for breast in result.breasts
    )
    model = result.model
    if any(breast.composition for breast in breasts) and not validated:
        model = replace(model, validated_for_clinical_use=False)
    return replace(result, breasts=breasts, model=model)
