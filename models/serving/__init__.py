"""Serving: from a study's stored files to a result. Sources (decoding, LUTs, slabs, MRI
projections), preprocessing, the networks and their checkpoints, inference with heatmaps,
findings, density and the result vocabulary. torch is imported only by the modules that
run a network (inference, networks, density, study), and only when first used through this
face; laterality, view and the result types are pydicom and numpy only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.faces import lazy_names

if TYPE_CHECKING:
    from models.serving.aggregate import category
    from models.serving.breast_view import (
        frame_laterality,
        laterality_of,
        shows_both_breasts,
        side_from,
        view_code_of,
        view_from,
        view_of,
    )
    from models.serving.calibration import parse_operating_point
    from models.serving.checkpoint import TASKS, CheckpointError, Manifest, read_verified
    from models.serving.density import check_density_engine, compositions, with_compositions
    from models.serving.inference import Predictor
    from models.serving.networks import BreastClassifier
    from models.serving.preprocess import Geometry, display_grey, display_values
    from models.serving.result import (
        FINDING_KIND_OF_TYPE,
        LESION_TYPES,
        BreastResult,
        Category,
        Finding,
        ImageResult,
        ModelInfo,
        Point,
        Shape,
        StudyResult,
    )
    from models.serving.sources import (
        MAMMOGRAPHY_CLASSES,
        MR_CLASSES,
        NothingToAnalyse,
        PixelDataError,
        SourceError,
        SourceOptions,
        StudySources,
        study_sources,
    )
    from models.serving.study import analyse_images, analyse_studies
    from models.serving.volumes import DceRules

# name -> the module that defines it; loaded on first use, so that importing the face
# costs nothing until a name is asked for
_HOMES = {
    "BreastClassifier": "networks",
    "BreastResult": "result",
    "Category": "result",
    "CheckpointError": "checkpoint",
    "DceRules": "volumes",
    "FINDING_KIND_OF_TYPE": "result",
    "Finding": "result",
    "Geometry": "preprocess",
    "ImageResult": "result",
    "LESION_TYPES": "result",
    "MAMMOGRAPHY_CLASSES": "sources",
    "MR_CLASSES": "sources",
    "Manifest": "checkpoint",
    "ModelInfo": "result",
    "NothingToAnalyse": "sources",
    "PixelDataError": "sources",
    "Point": "result",
    "Predictor": "inference",
    "Shape": "result",
    "SourceError": "sources",
    "SourceOptions": "sources",
    "StudyResult": "result",
    "StudySources": "sources",
    "TASKS": "checkpoint",
    "analyse_images": "study",
    "analyse_studies": "study",
    "category": "aggregate",
    "check_density_engine": "density",
    "compositions": "density",
    "display_grey": "preprocess",
    "display_values": "preprocess",
    "frame_laterality": "breast_view",
    "laterality_of": "breast_view",
    "parse_operating_point": "calibration",
    "read_verified": "checkpoint",
    "shows_both_breasts": "breast_view",
    "side_from": "breast_view",
    "study_sources": "sources",
    "view_code_of": "breast_view",
    "view_from": "breast_view",
    "view_of": "breast_view",
    "with_compositions": "density",
}
__all__ = [
    "FINDING_KIND_OF_TYPE",
    "LESION_TYPES",
    "MAMMOGRAPHY_CLASSES",
    "MR_CLASSES",
    "TASKS",
    "BreastClassifier",
    "BreastResult",
    "Category",
    "CheckpointError",
    "DceRules",
    "Finding",
    "Geometry",
    "ImageResult",
    "Manifest",
    "ModelInfo",
    "NothingToAnalyse",
    "PixelDataError",
    "Point",
    "Predictor",
    "Shape",
    "SourceError",
    "SourceOptions",
    "StudyResult",
    "StudySources",
    "analyse_images",
    "analyse_studies",
    "category",
    "check_density_engine",
    "compositions",
    "display_grey",
    "display_values",
    "frame_laterality",
    "laterality_of",
    "parse_operating_point",
    "read_verified",
    "shows_both_breasts",
    "side_from",
    "study_sources",
    "view_code_of",
    "view_from",
    "view_of",
    "with_compositions",
]

__getattr__ = lazy_names(__name__, _HOMES)
