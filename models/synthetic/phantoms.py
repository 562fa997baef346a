"""Synthetic breast phantoms with inserted lesions: the demo models' training data and test.

Not anatomy: a breast-shaped region against the chest wall, fibroglandular texture from
smoothed noise, a skin line, and optionally a lesion (a dense, spiculated-edged blob) at a
known place. Views are generated for the left breast with the chest wall on the left and
mirrored for right views, as a mammography unit displays them, so the laterality handling
of the whole pipeline is exercised. Lesion centres are returned in source pixel coordinates
(column, row) and in millimetres via the pixel spacing.

A phantom may be given a BI-RADS breast composition (a almost entirely fat ... d extremely
dense): fibroglandular tissue then covers that category's share of the breast, which is what
the demo density model learns to read. Without one the texture is the plain one the demo
lesion model was trained on. The fat and gland levels keep a lesion brighter than either, so
the demo lesion model, which never saw a composition, still finds lesions in all four (less
surely in the densest, where tissue masks a lesion as it does in real mammograms).

Everything is drawn in millimetres, as a detector images a breast: the image is a full-field
detector (332.8 x 256 mm: 3328 x 2560 pixels of 0.1 mm), the breast is 10-16 cm from chest
wall to nipple, the lesion 5-15 mm across and the texture's grain a few millimetres, whatever
the pixel count. A smaller image is the same field with larger pixels, so the breast keeps
its physical size and looks alike at every size (only finer or coarser).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.serving.result import Point

DETECTOR_MM = (332.8, 256.0)  # rows, columns: 3328 x 2560 pixels of 0.1 mm
LESION_DIAMETER_MM = (5.0, 15.0)
GRAIN_MM = (20.0, 5.0)  # coarse and fine fibroglandular texture
# quantum noise (display units) of a 1 mm pixel; a pixel of side s mm catches s^2 as many
# photons, so its noise is NOISE / s and the image looks alike at every pixel size
NOISE = 0.004
# BI-RADS breast composition -> the share of the breast that is fibroglandular tissue, with
# gaps between the categories so that a phantom is plainly one of them
FIBROGLANDULAR_FRACTION = {
    "a": (0.03, 0.15),
    "b": (0.30, 0.42),
    "c": (0.58, 0.70),
    "d": (0.85, 0.95),
}
FAT, GLAND = 0.25, 0.44  # display values; a lesion (0.55-0.8) stays brighter than either


@dataclass(frozen=True)
class Lesion:
    center: Point  # in the returned image's pixel grid
    radius_px: float
    radius_mm: float


@dataclass(frozen=True)
class PhantomView:
    image: np.ndarray  # float32 in [0, 1]
    laterality: str
    view: str
    lesion: Lesion | None
    pixel_spacing_mm: float
    composition: str | None = None  # BI-RADS a-d, when the phantom was given one


def detector_spacing(shape: tuple[int, int]) -> float:
    """The pixel spacing (mm) at which an image of ``shape`` covers the whole detector (the
    larger of the two: a shape of another aspect ratio shows a little more on one side)."""
    return max(DETECTOR_MM[0] / shape[0], DETECTOR_MM[1] / shape[1])


def _interpolation(length: int, knots: int) -> np.ndarray:
    """(length, knots) weights of linear interpolation from ``knots`` evenly spread values."""
    where = np.linspace(0, knots - 1.001, length)
    below = where.astype(int)
    weights = np.zeros((length, knots), dtype=np.float32)
    index = np.arange(length)
    weights[index, below] = 1 - (where - below)
    weights[index, below + 1] = where - below
    return weights


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Unit normal noise on a grid ``scale`` pixels apart, bilinearly interpolated (as two
    small matrix products, so a full-field image costs little)."""
    knots = (max(2, int(shape[0] // scale) + 2), max(2, int(shape[1] // scale) + 2))
    coarse = rng.standard_normal(knots).astype(np.float32)
    rows, columns = _interpolation(shape[0], knots[0]), _interpolation(shape[1], knots[1])
    return np.asarray(rows @ coarse @ columns.T, dtype=np.float32)


@dataclass(frozen=True)
class _Outline:
    """The breast in millimetres from the top-left corner (chest wall at column 0)."""

    depth: float  # chest wall to nipple
    half_height: float
    centre: float  # row of the nipple
    pectoral: tuple[float, float] | None  # MLO: width at the image's top, height down the wall


def _outline(rng: np.random.Generator, view: str, field_rows_mm: float) -> _Outline:
    depth = float(rng.uniform(100.0, 160.0))
    half_height = float(rng.uniform(90.0, 115.0) if view == "CC" else rng.uniform(105.0, 130.0))
    centre = field_rows_mm * float(rng.uniform(0.47, 0.53))
    pectoral = (0.45 * depth, centre) if view == "MLO" else None
    return _Outline(depth, half_height, centre, pectoral)


def breast_mask(shape: tuple[int, int], outline: _Outline, spacing: float) -> np.ndarray:
    y = (np.arange(shape[0], dtype=np.float32) * spacing)[:, None]
    x = (np.arange(shape[1], dtype=np.float32) * spacing)[None, :]
    mask = ((y - outline.centre) / outline.half_height) ** 2 + (x / outline.depth) ** 2 < 1.0
    if outline.pectoral is not None:  # the pectoral muscle: a triangle against the wall
        width, height = outline.pectoral
        mask |= x < width * (1 - y / height)
    return np.asarray(mask, dtype=bool)


def _composed(
    rng: np.random.Generator,
    outline: _Outline,
    spacing: float,
    mask: np.ndarray,
    texture: tuple[np.ndarray, np.ndarray],
    composition: str,
) -> np.ndarray:
    """Display values of a breast of ``composition``: bright fibroglandular tissue in the
    coarse texture's patches, gathered in the middle of the breast, thinning toward the skin,
    covering the category's share of the breast (drawn within its range); fat elsewhere."""
    if composition not in FIBROGLANDULAR_FRACTION:
        raise ValueError(f"composition is one of {', '.join(FIBROGLANDULAR_FRACTION)}")
    fraction = float(rng.uniform(*FIBROGLANDULAR_FRACTION[composition]))
    coarse, fine = texture
    y = (np.arange(mask.shape[0], dtype=np.float32) * spacing)[:, None]
    x = (np.arange(mask.shape[1], dtype=np.float32) * spacing)[None, :]
    # 0 in the middle of the breast, about 1 at the skin
    reach = ((y - outline.centre) / outline.half_height) ** 2 + (
        (x - 0.45 * outline.depth) / (0.6 * outline.depth)
    ) ** 2
    field = coarse - 1.5 * reach
    threshold = float(np.quantile(field[mask], 1.0 - fraction)) if mask.any() else 0.0
    dense = 0.5 + 0.5 * np.tanh((field - threshold) / 0.5)  # soft edges
    return np.asarray(FAT + (GLAND - FAT) * dense + 0.03 * fine, dtype=np.float32)


def _lesion_place(
    rng: np.random.Generator, outline: _Outline, radius: float
) -> tuple[float, float]:
    """(row, column) in mm of a lesion centre well inside the breast, off the chest wall."""
    margin = radius + 8.0
    for _ in range(200):
        column = float(rng.uniform(0.12, 0.85)) * outline.depth
        row = outline.centre + float(rng.uniform(-0.8, 0.8)) * outline.half_height
        inside = ((row - outline.centre) / (outline.half_height - margin)) ** 2 + (
            column / (outline.depth - margin)
        ) ** 2
        if inside < 1.0 and column > margin:
            return row, column
    return outline.centre, outline.depth / 2


def _draw_lesion(
    rng: np.random.Generator, image: np.ndarray, row: float, column: float, radius: float
) -> None:
    """A dense blob with a spiculated edge (seven lobes) of ``radius`` pixels, in place."""
    reach = int(np.ceil(radius * 1.6)) + 2
    top, left = max(int(row) - reach, 0), max(int(column) - reach, 0)
    bottom, right = (
        min(int(row) + reach + 1, image.shape[0]),
        min(int(column) + reach + 1, image.shape[1]),
    )
    y = np.arange(top, bottom, dtype=np.float32)[:, None]
    x = np.arange(left, right, dtype=np.float32)[None, :]
    angle = np.arctan2(y - row, x - column)
    edge = radius * (1 + 0.25 * np.sin(7 * angle + rng.uniform(0, np.pi)))
    blob = np.clip(1.2 - np.hypot(y - row, x - column) / edge, 0, 1) ** 0.7
    window = image[top:bottom, left:right]
    window[...] = np.maximum(window, (0.55 + 0.25 * blob) * (blob > 0))


def phantom_view(
    rng: np.random.Generator,
    laterality: str,
    view: str,
    shape: tuple[int, int] = (256, 192),
    with_lesion: bool = False,
    pixel_spacing_mm: float | None = None,
    lesion_diameter_mm: tuple[float, float] = LESION_DIAMETER_MM,
    composition: str | None = None,
) -> PhantomView:
    """One view of ``shape`` pixels; ``pixel_spacing_mm`` None: the detector's field
    (``detector_spacing``), so the breast and lesion keep their size in millimetres. A
    larger ``lesion_diameter_mm`` range draws masses a coarse grid still shows.
    ``composition`` (a-d): a breast of that BI-RADS composition; None: the plain texture
    (and the same random draws as before compositions existed, so seeds keep their views)."""
    spacing = pixel_spacing_mm or detector_spacing(shape)
    outline = _outline(rng, view, shape[0] * spacing)
    mask = breast_mask(shape, outline, spacing)
    coarse, fine = (smooth_noise(rng, shape, grain / spacing) for grain in GRAIN_MM)
    if composition is None:
        tissue = 0.35 + 0.12 * coarse + 0.05 * fine
    else:
        tissue = _composed(rng, outline, spacing, mask, (coarse, fine), composition)
    image = np.where(mask, tissue, 0.02).astype(np.float32)
    lesion = None
    if with_lesion:
        radius_mm = float(rng.uniform(*lesion_diameter_mm)) / 2
        row_mm, column_mm = _lesion_place(rng, outline, radius_mm)
        r, c, radius = row_mm / spacing, column_mm / spacing, radius_mm / spacing
        _draw_lesion(rng, image, r, c, radius)
        lesion = Lesion(Point(c, r), radius, radius_mm)
    image += (NOISE / spacing) * rng.standard_normal(shape, dtype=np.float32)
    np.clip(image, 0, 1, out=image)
    if laterality == "R":  # displayed mirrored: chest wall on the right
        image = image[:, ::-1].copy()
        if lesion is not None:
            mirrored = Point(shape[1] - 1 - lesion.center.column, lesion.center.row)
            lesion = Lesion(mirrored, lesion.radius_px, lesion.radius_mm)
    return PhantomView(image, laterality, view, lesion, spacing, composition)


def phantom_study(
    rng: np.random.Generator,
    lesion_side: str | None,
    shape: tuple[int, int] = (256, 192),
    composition: str | None = None,
) -> list[PhantomView]:
    """Four screening views; the lesion, if any, in both views of ``lesion_side``; both
    breasts of ``composition`` (one woman's breasts are mostly alike)."""
    return [
        phantom_view(
            rng, side, view, shape, with_lesion=(side == lesion_side), composition=composition
        )
        for side in ("R", "L")
        for view in ("CC", "MLO")
    ]


def to_stored_values(image: np.ndarray, bits: int = 14) -> np.ndarray:
    """Display values in [0, 1] as unsigned stored pixel values (MONOCHROME2)."""
    return np.asarray(np.round(image * (2**bits - 1)), dtype=np.uint16)
