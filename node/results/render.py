"""Rendering a heatmap overlay: the source windowed as a viewer shows it, a colour heatmap
blended on it, finding outlines and burned-in text. Pure array work (numpy, Pillow)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from models.serving import Finding, Point, Shape, display_grey, display_values

# Piecewise-linear "jet": dark blue -> blue -> cyan -> yellow -> red.
JET = np.array(
    [[0, 0, 128], [0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]], dtype=np.float32
)
MAX_ALPHA = 0.55
HEAT_LEVELS = 256  # heat quantised for the blend table (``blend``)
# The corners of the image that viewers write their own text over (OHIF puts patient and
# study information in all four); burned-in labels stay out of them (``label_layout``).
CORNER_WIDTH = 0.25
CORNER_HEIGHT = 0.15
MIN_TEXT = 8  # px: the smallest burned-in font (images under 320 rows)
Side = Literal["left", "right"]
OUTLINE = (255, 255, 255)
TEXT = (255, 255, 0)


def windowed(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """8-bit grey as a viewer would show it (the models' own display transform)."""
    return display_grey(display_values(ds, pixels))


def stretch(values: np.ndarray) -> np.ndarray:
    """8-bit grey spanning the 0.5-99.5 percentile range (robust to a few extreme pixels)."""
    values = values.astype(np.float64)
    low, high = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    scaled = np.clip((values - low) / max(high - low, 1e-9), 0, 1)
    return (scaled * 255).round().astype(np.uint8)


def colormap(heatmap: np.ndarray) -> np.ndarray:
    positions = np.clip(heatmap, 0, 1) * (len(JET) - 1)
    lower = np.floor(positions).astype(int).clip(0, len(JET) - 2)
    fraction = (positions - lower)[..., None]
    rgb: np.ndarray = JET[lower] * (1 - fraction) + JET[lower + 1] * fraction
    return rgb


def exact_blend(grey: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """RGB uint8: the heatmap's colour weighted by its value over the grey image, in floating
    point (the definition; ``blend`` gives the same through a table)."""
    alpha = (np.clip(heatmap, 0, 1) * MAX_ALPHA)[..., None]
    base = np.repeat(grey[..., None].astype(np.float32), 3, axis=2)
    mixed: np.ndarray = base * (1 - alpha) + colormap(heatmap) * alpha
    return mixed.round().clip(0, 255).astype(np.uint8)


def _blend_table() -> np.ndarray:
    """Every (heat level, grey) pair's blended colour: 65,536 x RGB, indexed level * 256 + grey."""
    levels = np.linspace(0.0, 1.0, HEAT_LEVELS, dtype=np.float32)
    grey = np.broadcast_to(np.arange(256, dtype=np.uint8), (HEAT_LEVELS, 256))
    heat = np.broadcast_to(levels[:, None], (HEAT_LEVELS, 256))
    return exact_blend(grey, heat).reshape(-1, 3)


BLEND_TABLE = _blend_table()


def blend(grey: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """``exact_blend`` with the heat quantised to 256 levels (at most half a level off, a
    colour step of about 2 of 255): a table lookup per pixel instead of a dozen full-size
    float arrays, which made a 3328x2560 overlay take most of a second."""
    if grey.shape != heatmap.shape:
        raise ValueError("the heatmap and the image differ in shape")
    if grey.dtype != np.uint8:
        raise TypeError("blend takes 8-bit grey")
    level = np.clip(heatmap, 0, 1, dtype=np.float32)
    np.multiply(level, HEAT_LEVELS - 1, out=level)
    np.rint(level, out=level)
    index = level.astype(np.uint16)
    np.left_shift(index, 8, out=index)
    np.bitwise_or(index, grey, out=index)
    rgb: np.ndarray = BLEND_TABLE[index]
    return rgb


def outline_points(
    shape: Shape, points: tuple[Point, ...], samples: int = 72
) -> list[tuple[float, float]]:
    if shape is Shape.POLYGON:
        return [(p.column, p.row) for p in (*points, points[0])]
    if shape is Shape.ELLIPSE:
        a0, a1, b0, b1 = points
        cx, cy = (a0.column + a1.column) / 2, (a0.row + a1.row) / 2
        major = math.hypot(a1.column - a0.column, a1.row - a0.row) / 2
        minor = math.hypot(b1.column - b0.column, b1.row - b0.row) / 2
        angle = math.atan2(a1.row - a0.row, a1.column - a0.column)
        outline = []
        for step in range(samples + 1):
            t = 2 * math.pi * step / samples
            x, y = major * math.cos(t), minor * math.sin(t)
            outline.append(
                (
                    cx + x * math.cos(angle) - y * math.sin(angle),
                    cy + x * math.sin(angle) + y * math.cos(angle),
                )
            )
        return outline
    return []


def annotate(
    rgb: np.ndarray, findings: tuple[Finding, ...], lines: list[str], side: Side = "left"
) -> np.ndarray:
    """Finding outlines and the text lines burned into ``rgb``, in place (and returned), the
    text placed by ``label_layout`` along the ``side`` edge. Each mark goes through Pillow on
    the small region it covers: a full-size overlay there and back is two copies of 25 MB."""
    width = max(1, round(min(rgb.shape[:2]) / 300))
    for finding in findings:
        region = finding.region
        if region.shape is Shape.POINT:
            c, r, size = region.points[0].column, region.points[0].row, 6 * width
            strokes = [[(c - size, r), (c + size, r)], [(c, r - size), (c, r + size)]]
        else:
            strokes = [outline_points(region.shape, region.points)]
        for stroke in strokes:
            if stroke:
                _paint(rgb, _bounds(stroke, width + 1), _line(stroke, width))
    font, outline, places = label_layout(rgb.shape[:2], lines, side)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for at, line in zip(places, lines, strict=True):
        box = measure.textbbox(at, line, font=font, stroke_width=outline)
        _paint(
            rgb, (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), _text(at, line, font, outline)
        )
    return rgb


def label_layout(
    shape: tuple[int, ...], lines: list[str], side: Side
) -> tuple[Font, int, list[tuple[int, int]]]:
    """Font, stroke width and the top-left point of each text line: a block along the
    ``side`` edge that starts just below the top corner region and stays out of the bottom
    one, where viewers write their own text (patient, study, window, zoom), and clear of
    the middle of the top and bottom edges (a viewer's cine controls). The font follows the
    image height (a fortieth: 83 px at 3328 rows, 26 px at 1024), smaller only where the
    block would not fit."""
    rows, columns = int(shape[0]), int(shape[1])
    top = math.ceil(rows * CORNER_HEIGHT) + max(2, rows // 100)
    room = math.floor(rows * (1 - CORNER_HEIGHT)) - top  # down to the bottom corner region
    size = max(MIN_TEXT, round(rows / 40))
    while True:
        font = ImageFont.load_default(size=size)
        outline = max(1, size // 12)
        step, margin = round(size * 1.3), size // 2
        width = max((_width(font, line, outline) for line in lines), default=0)
        fits = step * len(lines) <= room and width + 2 * margin <= columns
        if fits or size <= MIN_TEXT:
            break
        size -= 1
    places = []
    for number, line in enumerate(lines):
        x = margin if side == "left" else columns - margin - _width(font, line, outline)
        places.append((max(0, x), top + number * step))
    return font, outline, places


def _width(font: Font, line: str, outline: int) -> int:
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return int(measure.textbbox((0, 0), line, font, stroke_width=outline)[2])


Painter = Callable[[ImageDraw.ImageDraw, int, int], None]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _bounds(points: list[tuple[float, float]], margin: float) -> tuple[float, ...]:
    columns, rows = [p[0] for p in points], [p[1] for p in points]
    return min(columns) - margin, min(rows) - margin, max(columns) + margin, max(rows) + margin


def _line(points: list[tuple[float, float]], width: int) -> Painter:
    def paint(draw: ImageDraw.ImageDraw, left: int, top: int) -> None:
        draw.line([(c - left, r - top) for c, r in points], fill=OUTLINE, width=width)

    return paint


def _text(at: tuple[int, int], line: str, font: Font, outline: int) -> Painter:
    def paint(draw: ImageDraw.ImageDraw, left: int, top: int) -> None:
        position = (at[0] - left, at[1] - top)
        draw.text(position, line, fill=TEXT, font=font, stroke_width=outline, stroke_fill=(0, 0, 0))

    return paint


def _paint(rgb: np.ndarray, box: tuple[float, ...], paint: Painter) -> None:
    """Run ``paint`` on the part of ``rgb`` inside ``box`` (left, top, right, bottom), with
    coordinates relative to that part, and write the part back."""
    rows, columns = rgb.shape[:2]
    left, top = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    right, bottom = min(columns, math.ceil(box[2]) + 1), min(rows, math.ceil(box[3]) + 1)
    if left >= right or top >= bottom:
        return
    part = Image.fromarray(np.ascontiguousarray(rgb[top:bottom, left:right]))
    paint(ImageDraw.Draw(part), left, top)
    rgb[top:bottom, left:right] = np.asarray(part)
