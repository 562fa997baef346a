"""Synthetic dynamic contrast-enhanced (DCE) breast MRI phantoms: the demo MRI model's
training data, its test, and ``breastnode sample-study --mri``.

Not anatomy: an axial volume (slices, rows, columns) with both breasts as half-ellipsoids in
front of the chest wall (row 0 anterior; low columns the patient's right, as an axial slice
with the row direction to the patient's left is shown), fat and fibroglandular texture, a
body behind the chest wall with a heart that enhances, and optionally one enhancing lesion
(fast wash-in, slight wash-out) at a known place. Three phases: pre-contrast and two
post-contrast, in MR-like signal units (0 .. about 2000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.serving.result import Point
from models.synthetic.phantoms import smooth_noise

NOISE = 12.0  # signal units, per phase


@dataclass(frozen=True)
class MriLesion:
    side: str  # "L" or "R": the patient's side
    slice: int
    center: Point  # (column, row) in the axial slice grid, which the projection shares
    radius_px: float


@dataclass(frozen=True)
class DcePhantom:
    phases: tuple[np.ndarray, ...]  # pre, post 1, post 2: (slices, rows, columns) float32
    lesion: MriLesion | None
    pixel_spacing_mm: float
    slice_thickness_mm: float


def _breasts(
    shape: tuple[int, int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, tuple[float, float]]:
    """(breast mask, body mask, heart mask, chest-wall row, breast centre columns R/L)."""
    slices, rows, columns = shape
    z, y, x = np.mgrid[0:slices, 0:rows, 0:columns].astype(np.float32)
    wall = rows * float(rng.uniform(0.5, 0.56))
    depth = rows * rng.uniform(0.3, 0.4)  # nipple to chest wall
    width = columns * rng.uniform(0.17, 0.21)
    height = slices * rng.uniform(0.38, 0.46)
    mid_z = (slices - 1) / 2
    centres = (columns * float(rng.uniform(0.26, 0.3)), columns * float(rng.uniform(0.7, 0.74)))
    breast = np.zeros(shape, dtype=bool)
    for centre in centres:
        breast |= (
            ((x - centre) / width) ** 2 + ((y - wall) / depth) ** 2 + ((z - mid_z) / height) ** 2
            < 1.0
        ) & (y <= wall)
    body = (
        ((x - columns / 2) / (columns * 0.46)) ** 2 + ((y - rows * 0.78) / (rows * 0.26)) ** 2
    ) < 1
    body &= y > wall
    heart = (
        ((x - columns * 0.55) / (columns * 0.13)) ** 2 + ((y - rows * 0.8) / (rows * 0.12)) ** 2
    ) < 1
    return breast, body, heart & body, float(wall), centres


def dce_phantom(
    rng: np.random.Generator,
    lesion_side: str | None,
    shape: tuple[int, int, int] = (16, 128, 128),
    field_of_view_mm: float = 340.0,
    slice_thickness_mm: float = 6.0,
) -> DcePhantom:
    """One DCE study's three phases; the lesion, if any, in the ``lesion_side`` breast.
    Sizes scale with the grid, so a larger ``shape`` gives the same phantom, finer."""
    slices, rows, columns = shape
    pixel_spacing_mm = field_of_view_mm / columns
    breast, body, heart, wall, centres = _breasts(shape, rng)
    grain = max(2, columns // 12)
    texture = np.stack([smooth_noise(rng, (rows, columns), grain) for _ in range(slices)])
    glandular = breast & (texture > rng.uniform(0.0, 0.6))
    pre = np.where(breast, 900.0, 0.0) - np.where(glandular, 450.0, 0.0)
    pre += np.where(body, 500.0 + 60.0 * texture, 0.0)
    uptake = np.zeros(shape, dtype=np.float32)
    uptake += np.where(glandular, rng.uniform(20.0, 60.0), 0.0)  # background enhancement
    uptake += np.where(heart, rng.uniform(250.0, 400.0), 0.0)
    lesion = None
    if lesion_side is not None:
        z, y, x = np.mgrid[0:slices, 0:rows, 0:columns].astype(np.float32)
        # the patient's right is on the low columns
        centre_column = centres[0] if lesion_side == "R" else centres[1]
        radius = float(rng.uniform(0.022, 0.04)) * columns  # 7-14 mm
        for _ in range(50):
            c = centre_column + float(rng.uniform(-0.5, 0.5)) * columns * 0.12
            r = wall - float(rng.uniform(0.25, 0.7)) * (wall - rows * 0.16)
            s = float(rng.uniform(0.35, 0.65)) * (slices - 1)
            if breast[round(s), round(r), round(c)]:
                break
        through = max(1.0, radius * pixel_spacing_mm / slice_thickness_mm)
        distance = np.sqrt(
            ((x - c) / radius) ** 2 + ((y - r) / radius) ** 2 + ((z - s) / through) ** 2
        )
        blob = np.clip(1.3 - distance, 0.0, 1.0) ** 0.6
        uptake += np.float32(rng.uniform(600.0, 900.0)) * blob
        lesion = MriLesion(lesion_side, round(s), Point(float(c), float(r)), radius)
    phases = []
    for gain in (0.0, 1.0, 0.92):  # wash-in, then a slight wash-out
        phase = pre + gain * uptake + rng.normal(0.0, NOISE, size=shape)
        phases.append(np.clip(phase, 0.0, 4095.0).astype(np.float32))
    return DcePhantom(tuple(phases), lesion, pixel_spacing_mm, slice_thickness_mm)
