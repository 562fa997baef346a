"""Manifest rows to model inputs for training and evaluation, through the inference path.

A DICOM row is read by :func:`models.serving.sources.study_sources`, exactly as the node reads a
stored study (LUTs, MONOCHROME1, tomosynthesis slabs, the DCE MRI projection of a folder);
a PNG or JPEG goes through the same display scaling. Then :func:`models.serving.preprocess.plan`
and :func:`~models.serving.preprocess.place` put it in the model grid as the engine does, so a
checkpoint sees in the node what it saw in training.

Placed images are kept in a float16 array (a memory-mapped file when a cache folder is
given, so a large dataset is decoded once and need not fit in memory). Augmentation works
on them in display values, before standardisation, as a contrast change must.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as tvf
from tqdm import tqdm

from models.serving.preprocess import Geometry, place, plan, scale_display, standardise
from models.serving.result import LESION_TYPES
from models.serving.sources import SourceError, SourceOptions, study_sources
from models.serving.study import AnalysisImage
from models.training.annotations import (
    Annotation,
    Box,
    Circle,
    load_mask,
    mask_to_model,
    to_model,
)
from models.training.dataset import DatasetError, Row

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm"}


def load_image(row: Row) -> AnalysisImage:
    """The row's image in display values on its source grid. A DICOM file that gives
    several images (tomosynthesis slabs) is refused: its label is the breast's, not a slab's."""
    path = row.path
    if not path.exists():
        raise DatasetError(f"{path}: not found")
    if path.suffix.lower() in PICTURE_SUFFIXES:
        try:
            with Image.open(path) as picture:
                grey = picture.mode in {"L", "I", "I;16", "F"}
                values = np.asarray(picture if grey else picture.convert("L"))  # palette, colour
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetError(f"{path}: unreadable picture ({exc})") from exc
        return AnalysisImage(path.name, scale_display(values), row.laterality, row.view)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    try:
        sources = study_sources(files, SourceOptions())
    except SourceError as exc:
        raise DatasetError(f"{path}: {exc}") from exc
    if len(sources.images) != 1:
        raise DatasetError(
            f"{path}: gives {len(sources.images)} images (tomosynthesis or several series); "
            "a manifest row must be one image or one MR study"
        )
    image = sources.images[0]
    if image.laterality is None and row.laterality in {"L", "R"}:
        image = replace(image, laterality=row.laterality)
    return image


@dataclass(frozen=True)
class PlacedSet:
    """The rows' images in the model grid (display values, float16) and their labels; when
    any row carries lesion annotations, every row's lesion mask in the same grid too."""

    images: np.ndarray  # (n, rows, columns)
    labels: np.ndarray  # (n,) class indices
    geometries: tuple[Geometry, ...]
    masks: np.ndarray | None = None  # (n, rows, columns) uint8, 1 = lesion; None: no annotations
    annotated: np.ndarray | None = None  # (n,) bool: the row had annotations (else mask empty)
    # (n, rows, columns) uint8 lesion types (``rasterise``) when some annotation has a type
    types: np.ndarray | None = None

    def lesion_types(self) -> tuple[str, ...]:
        """The lesion types the set's annotations show, in LESION_TYPES order."""
        if self.types is None:
            return ()
        present = set(np.unique(self.types).tolist()) - {0}
        return tuple(name for n, name in enumerate(LESION_TYPES) if n + 1 in present)

    def standardised(self, index: int) -> np.ndarray:
        return standardise(self.images[index].astype(np.float32))

    def batches(self, size: int) -> Iterator[tuple[slice, np.ndarray]]:
        """Standardised inputs ``size`` at a time: (rows of the set, (b, rows, columns))."""
        for start in range(0, len(self.labels), size):
            part = slice(start, min(start + size, len(self.labels)))
            yield part, np.stack([self.standardised(n) for n in range(part.start, part.stop)])


def place_rows(
    rows: Sequence[Row],
    labels: Sequence[int] | np.ndarray,
    working_size: tuple[int, int],
    cache: Path | None = None,
    progress: bool = False,
    description: str = "preparing",
) -> PlacedSet:
    """Decode and place every row once (into ``cache`` as a memory-mapped file when given)."""
    shape = (len(rows), *working_size)
    images: np.ndarray
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        images = np.lib.format.open_memmap(cache, mode="w+", dtype=np.float16, shape=shape)
    else:
        images = np.zeros(shape, dtype=np.float16)
    annotated = np.array([bool(row.annotations) for row in rows], dtype=bool)
    masks: np.ndarray | None = None
    types: np.ndarray | None = None
    typed = any(a.lesion_type is not None for row in rows for a in row.annotations)
    if annotated.any():  # one byte a pixel beside the images, on disk when they are
        masks = _byte_array(cache, "-masks", shape)
        types = _byte_array(cache, "-types", shape) if typed else None
    geometries = []
    for n, row in enumerate(tqdm(rows, desc=description, unit="image", disable=not progress)):
        image = load_image(row)
        geometry = plan(image.image, image.laterality, working_size, crop=image.crop)
        images[n] = place(image.image, geometry)
        if masks is not None and row.annotations:
            masks[n], row_types = rasterise(row.annotations, geometry, working_size)
            if types is not None:
                types[n] = row_types
        geometries.append(geometry)
    for array in (images, masks, types):
        if isinstance(array, np.memmap):
            array.flush()
    return PlacedSet(
        images,
        np.asarray(labels, dtype=np.int64),
        tuple(geometries),
        masks,
        annotated if masks is not None else None,
        types,
    )


def _byte_array(cache: Path | None, suffix: str, shape: tuple[int, ...]) -> np.ndarray:
    """A zeroed uint8 array, memory-mapped beside the cache when there is one."""
    if cache is None:
        return np.zeros(shape, dtype=np.uint8)
    where = cache.with_name(cache.stem + suffix + ".npy")
    return np.lib.format.open_memmap(where, mode="w+", dtype=np.uint8, shape=shape)


def lesion_mask(
    annotations: Sequence[Annotation], geometry: Geometry, size: tuple[int, int]
) -> np.ndarray:
    """The annotations rasterised in the model grid (uint8, 1 = lesion), placed like the
    pixels: circles as discs, boxes filled, mask images through ``mask_to_model``. A lesion
    smaller than a model pixel still marks the pixel holding its centre, so none is lost."""
    return rasterise(annotations, geometry, size)[0]


def rasterise(
    annotations: Sequence[Annotation], geometry: Geometry, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The lesion mask (as :func:`lesion_mask`) and each model pixel's lesion type (uint8:
    0 none or untyped, n + 1 for LESION_TYPES[n]; where typed lesions overlap, the later
    one's), in one pass so a mask image is read once."""
    mask = np.zeros(size, dtype=bool)
    types = np.zeros(size, dtype=np.uint8)
    for annotation in annotations:
        pixels = annotation_pixels(annotation, geometry, size)
        mask |= pixels
        if annotation.lesion_type is not None:
            types[pixels] = LESION_TYPES.index(annotation.lesion_type) + 1
    return mask.astype(np.uint8), types


def annotation_pixels(
    annotation: Annotation, geometry: Geometry, size: tuple[int, int]
) -> np.ndarray:
    """One annotation's pixels in the model grid (bool), as :func:`lesion_mask` draws them."""
    shape = annotation.shape
    if not isinstance(shape, Circle | Box):
        return mask_to_model(load_mask(shape.path), geometry).astype(bool)
    rows, columns = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    placed = to_model(shape, geometry)
    if isinstance(placed, Circle):
        radius = max(placed.radius, 0.5)
        inside = (columns - placed.column) ** 2 + (rows - placed.row) ** 2 <= radius**2
        centre = (placed.row, placed.column)
    else:
        inside = (
            (columns >= placed.left - 0.5)
            & (columns <= placed.right + 0.5)
            & (rows >= placed.top - 0.5)
            & (rows <= placed.bottom + 0.5)
        )
        centre = ((placed.top + placed.bottom) / 2, (placed.left + placed.right) / 2)
    row, column = round(centre[0]), round(centre[1])
    if 0 <= row < size[0] and 0 <= column < size[1]:
        inside[row, column] = True
    return np.asarray(inside, dtype=bool)


@dataclass(frozen=True)
class Augmentation:
    """Random changes a mammogram could show without changing its label. No left-right
    flip by default: preprocessing puts every breast's chest wall on the left, and a flip
    would show the network orientations it never meets in use."""

    rotation_degrees: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)  # whole-image scaling about the centre
    zoom: tuple[float, float] = (0.8, 1.0)  # fraction of the grid kept, then enlarged
    vertical_flip: float = 0.5  # probability (cranial-caudal mirror)
    horizontal_flip: float = 0.0
    gamma: tuple[float, float] = (0.8, 1.25)
    contrast: tuple[float, float] = (0.8, 1.2)

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``image``: (1, rows, columns) in display values; the same shape back."""
        return self.with_mask(image, None, generator)[0]

    def with_mask(
        self, image: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The image and its lesion mask (both (1, rows, columns)) through the same crop,
        rotation, scaling and flips, so the mask stays on the lesion; the mask comes back
        as lesion coverage in [0, 1] (bilinear), contrast changes touch the image only. The
        random draws are the same with or without a mask."""

        def uniform(bounds: tuple[float, float]) -> float:
            low, high = bounds
            return low + (high - low) * float(torch.rand((), generator=generator))

        rows, columns = image.shape[-2:]
        if mask is not None:
            image = torch.cat([image, mask.to(image.dtype)])
        keep = math.sqrt(uniform(self.zoom))
        height, width = max(1, round(rows * keep)), max(1, round(columns * keep))
        top = int(torch.randint(0, rows - height + 1, (), generator=generator))
        left = int(torch.randint(0, columns - width + 1, (), generator=generator))
        image = tvf.resized_crop(image, top, left, height, width, [rows, columns], antialias=True)
        image = tvf.affine(
            image,
            angle=uniform((-self.rotation_degrees, self.rotation_degrees)),
            translate=[0, 0],
            scale=uniform(self.scale),
            shear=[0.0, 0.0],
            interpolation=tvf.InterpolationMode.BILINEAR,
        )
        if float(torch.rand((), generator=generator)) < self.vertical_flip:
            image = tvf.vertical_flip(image)
        if float(torch.rand((), generator=generator)) < self.horizontal_flip:
            image = tvf.horizontal_flip(image)
        moved = image[1:].clamp(0, 1) if mask is not None else None
        image = image[:1].clamp(0, 1) ** uniform(self.gamma)
        mean = image.mean()
        return ((image - mean) * uniform(self.contrast) + mean).clamp(0, 1), moved


class TrainingImages(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """Standardised (1, rows, columns) inputs with their labels, augmented when asked."""

    def __init__(
        self, placed: PlacedSet, augmentation: Augmentation | None = None, seed: int = 0
    ) -> None:
        self.placed = placed
        self.augmentation = augmentation
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.placed.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.placed.images[index].astype(np.float32))[None]
        if self.augmentation is not None:
            image = self.augmentation(image, self.generator)
        return _standardised(image), int(self.placed.labels[index])


class AnnotatedImages(TrainingImages):
    """As :class:`TrainingImages`, with each image's lesion mask moved by the same
    augmentation (1, rows, columns) in [0, 1], and whether the row was annotated. With
    ``lesion_types`` (the network's), the mask has a channel more per type: that type's
    coverage, moved alike, so a lesion's type stays on its pixels."""

    def __init__(
        self,
        placed: PlacedSet,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        lesion_types: Sequence[str] = (),
    ) -> None:
        if placed.masks is None or placed.annotated is None:
            raise ValueError("AnnotatedImages needs a placed set with lesion masks")
        if lesion_types and placed.types is None:
            raise ValueError("lesion types asked for, but no annotation has a type")
        super().__init__(placed, augmentation, seed)
        self.masks: np.ndarray = placed.masks
        self.annotated: np.ndarray = placed.annotated
        self.type_codes = [LESION_TYPES.index(name) + 1 for name in lesion_types]

    def __getitem__(  # type: ignore[override]
        self, index: int
    ) -> tuple[torch.Tensor, int, torch.Tensor, bool]:
        image = torch.from_numpy(self.placed.images[index].astype(np.float32))[None]
        channels = [self.masks[index].astype(np.float32)]
        if self.type_codes:
            assert self.placed.types is not None
            types = self.placed.types[index]
            channels += [(types == code).astype(np.float32) for code in self.type_codes]
        mask: torch.Tensor | None = torch.from_numpy(np.stack(channels))
        if self.augmentation is not None:
            image, mask = self.augmentation.with_mask(image, mask, self.generator)
        assert mask is not None
        label = int(self.placed.labels[index])
        return _standardised(image), label, mask, bool(self.annotated[index])


def _standardised(image: torch.Tensor) -> torch.Tensor:
    spread = image.std(unbiased=False).clamp_min(1e-6)
    return (image - image.mean()) / spread
