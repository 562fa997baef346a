"""The analysis a worker runs for a complete study: a configured callable.

``[pipeline] analysis = "models"`` runs the node's own models (``[models]``);
``"package.module:function"`` names a function taking a :class:`StudyInput` and returning
the DICOM objects to send back (already built, with their own UIDs), which is how the
pipeline's tests plug in a stand-in. An analysis raises :class:`PermanentAnalysisError` for a
failure that trying again cannot mend; any other exception is taken as passing and retried.
The job records the message of the node's own errors (``NodeError``); of any other exception
only its type and where it was raised, since a library's message may quote a received value.
An analysis that leaves some instances out for good returns :class:`ResultObjects`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydicom.dataset import Dataset

from node.errors import ConfigError, NodeError
from storage.study_files import StoredInstance


class PermanentAnalysisError(NodeError):
    """This study, as stored, can never be analysed by this node as configured (an unreadable
    pixel stream, a checkpoint that does not fit the network, no analysable image): the job
    is dead-lettered at once instead of being retried for hours. The message says why and
    carries no patient data."""


# One stored instance as an analysis (the node's own or a plug-in) receives it.
InputInstance = StoredInstance


@dataclass(frozen=True)
class PreviousResult:
    sop_instance_uid: str
    sop_class_uid: str
    version: int
    path: Path


@dataclass(frozen=True)
class StudyInput:
    study_instance_uid: str
    version: int
    instances: tuple[InputInstance, ...]
    previous_results: tuple[PreviousResult, ...]


@dataclass(frozen=True)
class LeftOut:
    """A stored instance an analysis left out for good: its failure is permanent (pixel data
    that cannot be decoded), the study's other instances were analysed."""

    sop_instance_uid: str
    reason: str  # our own words, no patient data


class ResultObjects(list[Dataset]):
    """An analysis's result objects and the instances it left out (a plain sequence, as a
    plug-in returns, leaves none out)."""

    def __init__(self, objects: Iterable[Dataset] = (), left_out: Iterable[LeftOut] = ()):
        super().__init__(objects)
        self.left_out = tuple(left_out)


Analysis = Callable[[StudyInput], Sequence[Dataset]]


@runtime_checkable
class BatchAnalysis(Protocol):
    """An analysis that also takes several studies at once (their views share batches);
    each study's outcome is its objects or the exception that failed it alone."""

    studies_per_batch: int

    def __call__(self, study: StudyInput) -> Sequence[Dataset]: ...

    def many(self, studies: Sequence[StudyInput]) -> Sequence[Sequence[Dataset] | Exception]: ...


def load_analysis(spec: str) -> Analysis:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"[pipeline] analysis {spec!r} cannot be loaded: {exc}") from exc
    if not callable(function):
        raise ConfigError(f"[pipeline] analysis {spec!r} is not callable")
    return function  # type: ignore[no-any-return]
