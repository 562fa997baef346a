"""Rendering a heatmap overlay: the source windowed as a viewer shows it, a colour heatmap
blended on it, finding outlines and burned-in text. Pure array work (numpy, Pillow)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from models.preprocess import display_values
from models.result import Finding, Point, Shape

# Piecewise-linear "jet": dark blue -> blue -> cyan -> yellow -> red.
JET = np.array(
    [[0, 0, 128], [0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]], dtype=np.float32
)
MAX_ALPHA = 0.55
HEAT_LEVELS = 256  # heat quantised for the blend table (``blend``)
OUTLINE = (255, 255, 255)
TEXT = (255, 255, 0)


def windowed(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """8-bit grey as a viewer would show it (the models' own display transform)."""
    return np.asarray((display_values(ds, pixels) * 255).round(), dtype=np.uint8)


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


def annotate(rgb: np.ndarray, findings: tuple[Finding, ...], lines: list[str]) -> np.ndarray:
    image = Image.fromarray(rgb, mode="RGB")
    draw = ImageDraw.Draw(image)
    width = max(1, round(min(rgb.shape[:2]) / 300))
    for finding in findings:
        region = finding.region
        if region.shape is Shape.POINT:
            c, r, size = region.points[0].column, region.points[0].row, 6 * width
            draw.line([(c - size, r), (c + size, r)], fill=OUTLINE, width=width)
            draw.line([(c, r - size), (c, r + size)], fill=OUTLINE, width=width)
        else:
            draw.line(outline_points(region.shape, region.points), fill=OUTLINE, width=width)
    size = max(10, round(rgb.shape[0] / 40))
    font = ImageFont.load_default(size=size)
    y = size // 2
    for line in lines:
        draw.text(
            (size // 2, y),
            line,
            fill=TEXT,
            font=font,
            stroke_width=max(1, size // 12),
            stroke_fill=(0, 0, 0),
        )
        y += round(size * 1.3)
    return np.asarray(image)
