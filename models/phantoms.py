"""Synthetic breast phantoms with inserted lesions: the demo model's training data and its test.

Not anatomy: a breast-shaped region against the chest wall, fibroglandular texture from
smoothed noise, a skin line, and optionally a lesion (a dense, spiculated-edged blob) at a
known place. Views are generated for the left breast with the chest wall on the left and
mirrored for right views, as a mammography unit displays them, so the laterality handling
of the whole pipeline is exercised. Lesion centres are returned in source pixel coordinates
(column, row) and in millimetres via the pixel spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.result import Point


@dataclass(frozen=True)
class Lesion:
    center: Point  # in the returned image's pixel grid
    radius_px: float


@dataclass(frozen=True)
class PhantomView:
    image: np.ndarray  # float32 in [0, 1]
    laterality: str
    view: str
    lesion: Lesion | None
    pixel_spacing_mm: float


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> np.ndarray:
    coarse = rng.standard_normal((max(2, shape[0] // scale + 2), max(2, shape[1] // scale + 2)))
    rows = np.linspace(0, coarse.shape[0] - 1.001, shape[0])
    columns = np.linspace(0, coarse.shape[1] - 1.001, shape[1])
    r0, c0 = rows.astype(int), columns.astype(int)
    fr, fc = (rows - r0)[:, None], (columns - c0)[None, :]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    return np.asarray(top * (1 - fr) + bottom * fr, dtype=np.float32)


def breast_mask(shape: tuple[int, int], rng: np.random.Generator, view: str) -> np.ndarray:
    rows, columns = shape
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    depth = columns * rng.uniform(0.62, 0.8)
    half_height = rows * (rng.uniform(0.38, 0.46) if view == "CC" else rng.uniform(0.44, 0.5))
    centre = rows * rng.uniform(0.47, 0.53)
    mask = ((y - centre) / half_height) ** 2 + (x / depth) ** 2 < 1.0
    if view == "MLO":  # the pectoral muscle: a bright triangle in the upper chest-wall corner
        mask |= (x < columns * 0.25 * (1 - y / (rows * 0.45))) & (y < rows * 0.45)
    return np.asarray(mask, dtype=bool)


def phantom_view(
    rng: np.random.Generator,
    laterality: str,
    view: str,
    shape: tuple[int, int] = (256, 192),
    with_lesion: bool = False,
    pixel_spacing_mm: float = 0.4,
) -> PhantomView:
    mask = breast_mask(shape, rng, view)
    tissue = 0.35 + 0.12 * smooth_noise(rng, shape, 24) + 0.05 * smooth_noise(rng, shape, 6)
    image = np.where(mask, tissue, 0.02).astype(np.float32)
    lesion = None
    if with_lesion:
        rows, columns = np.nonzero(mask)
        inner = [
            (r, c)
            for r, c in zip(rows[::97], columns[::97], strict=True)
            if c > shape[1] * 0.15 and mask[max(r - 20, 0) : r + 20, c : c + 20].all()
        ]
        r, c = inner[int(rng.integers(len(inner)))] if inner else (shape[0] // 2, shape[1] // 3)
        radius = float(rng.uniform(5.0, 9.0))
        y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
        angle = np.arctan2(y - r, x - c)
        edge = radius * (1 + 0.25 * np.sin(7 * angle + rng.uniform(0, np.pi)))
        distance = np.hypot(y - r, x - c)
        blob = np.clip(1.2 - distance / edge, 0, 1) ** 0.7
        image = np.maximum(image, (0.55 + 0.25 * blob) * (blob > 0)).astype(np.float32)
        lesion = Lesion(Point(float(c), float(r)), radius)
    noise = rng.normal(0, 0.015, size=shape).astype(np.float32)
    image = np.clip(image + noise, 0, 1).astype(np.float32)
    if laterality == "R":  # displayed mirrored: chest wall on the right
        image = image[:, ::-1].copy()
        if lesion is not None:
            lesion = Lesion(
                Point(shape[1] - 1 - lesion.center.column, lesion.center.row), lesion.radius_px
            )
    return PhantomView(image, laterality, view, lesion, pixel_spacing_mm)


def phantom_study(
    rng: np.random.Generator,
    lesion_side: str | None,
    shape: tuple[int, int] = (256, 192),
) -> list[PhantomView]:
    """Four screening views; the lesion, if any, in both views of ``lesion_side``."""
    return [
        phantom_view(rng, side, view, shape, with_lesion=(side == lesion_side))
        for side in ("R", "L")
        for view in ("CC", "MLO")
    ]


def to_stored_values(image: np.ndarray, bits: int = 14) -> np.ndarray:
    """Display values in [0, 1] as unsigned stored pixel values (MONOCHROME2)."""
    return np.asarray(np.round(image * (2**bits - 1)), dtype=np.uint16)
