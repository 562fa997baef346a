"""A small labelled dataset drawn on the spot (SYNTHETIC phantoms, no patient data):
PNG views of phantom breasts, half with an inserted lesion, two views per breast, and the
manifest CSV that describes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from models.synthetic.phantoms import phantom_view
from models.training.dataset import Row, write_manifest


def phantom_dataset(
    folder: Path,
    patients: int = 16,
    seed: int = 7,
    shape: tuple[int, int] = (128, 96),
    malignant_labels: bool = False,
) -> Path:
    """Write ``patients`` synthetic women (both breasts, CC and MLO) and their manifest.

    Labels: normal/abnormal by default (a lesion makes the breast abnormal); with
    ``malignant_labels`` every breast has a lesion, and a larger one is "malignant"."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for patient in range(patients):
        lesion_side = ("L", "R")[patient % 2] if patient % 4 < 2 or malignant_labels else None
        for side in ("L", "R"):
            abnormal = side == lesion_side or malignant_labels
            for view in ("CC", "MLO"):
                phantom = phantom_view(rng, side, view, shape, with_lesion=abnormal)
                name = f"synthetic-{patient:03d}-{side}-{view}.png"
                pixels = np.round(phantom.image * 65535).astype(np.uint16)
                Image.fromarray(pixels).save(folder / name)
                if malignant_labels:
                    label = "malignant" if side == lesion_side else "benign"
                else:
                    label = "abnormal" if abnormal else "normal"
                rows.append(
                    Row(
                        folder / name,
                        f"SYNTHETIC-{patient:03d}",
                        f"study-{patient:03d}",
                        side,
                        view,
                        label,
                    )
                )
    manifest = folder / "manifest.csv"
    write_manifest(manifest, rows)
    return manifest
