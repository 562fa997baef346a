"""The node's own analysis (``[pipeline] analysis = "models"``): a study's stored files
through the configured checkpoints to the DICOM result objects.

Built once per worker process, so the networks stay loaded on their device between studies.
torch is imported here, lazily, never by the receivers. This is the boundary where the model
layer's deterministic errors (an unreadable stored instance or pixel stream, a checkpoint
that does not fit the network) become :class:`PermanentAnalysisError`, dead-lettered at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom import dcmread
from pydicom.dataset import Dataset

from node.config import Settings
from node.errors import ConfigError
from node.pipeline.analysis import (
    Analysis,
    LeftOut,
    PermanentAnalysisError,
    ResultObjects,
    StudyInput,
)
from node.results.build import build_result_objects

if TYPE_CHECKING:
    from models.serving import Predictor, SourceOptions, StudyResult, StudySources

logger = logging.getLogger(__name__)

FINDING_KINDS = {"mammography": "suspicious region", "mri": "enhancing lesion"}
# What decoding a stored pixel stream raises when the stream itself is bad (pydicom's
# decoders: a length that does not match, a syntax it cannot decode). The stored file never
# changes, so neither will the outcome. A RuntimeError (no decoder installed) or a bug in our
# own code is not the study's fault and stays transient.
DECODING_ERRORS = (ValueError, NotImplementedError)


def read_sources(study: StudyInput, options: SourceOptions) -> StudySources | None:
    """The study's images for the networks; None when it holds none they analyse. A stored
    instance or pixel stream that cannot be read is a :class:`PermanentAnalysisError`."""
    from models.serving import NothingToAnalyse, PixelDataError, SourceError, study_sources

    try:
        return study_sources([i.path for i in study.instances], options)
    except NothingToAnalyse as exc:
        logger.warning("study %s not analysed: %s", study.study_instance_uid, exc)
        return None
    except PixelDataError as exc:  # every image of the study
        raise PermanentAnalysisError(
            "the pixel data of a stored instance cannot be decoded "
            f"({type(exc.__cause__).__name__})"
        ) from exc
    except SourceError as exc:
        if isinstance(exc.__cause__, OSError):
            raise  # the file could not be read just now (I/O, file handles): may pass
        raise PermanentAnalysisError(f"a stored instance cannot be used: {exc}") from exc
    except DECODING_ERRORS as exc:
        raise PermanentAnalysisError(
            f"the pixel data of a stored instance cannot be decoded ({type(exc).__name__})"
        ) from exc


def network_failure(exc: Exception) -> Exception:
    """What an engine's failure means: a checkpoint that does not fit the network or its
    input is permanent; anything else (a device out of memory...) may pass."""
    from models.serving import CheckpointError

    if isinstance(exc, CheckpointError | ValueError):
        permanent = PermanentAnalysisError(
            f"the checkpoint does not fit the network or its input: {exc}"
        )
        permanent.__cause__ = exc
        return permanent
    return exc


def source_options(settings: Settings) -> SourceOptions:
    from models.serving import DceRules, SourceOptions

    defaults = DceRules()
    configured = settings.models
    rules = DceRules(
        pre=tuple(configured.mri_pre) or defaults.pre,
        post=tuple(configured.mri_post) or defaults.post,
        fallback=tuple(configured.mri_fallback) or defaults.fallback,
    )
    return SourceOptions(configured.slab_frames, configured.slab_stride or None, rules)


def load_engine(weights: Path, settings: Settings) -> Predictor:
    from models.serving import CheckpointError, Predictor

    try:
        return Predictor(
            weights, settings.models.device, settings.models.batch_size, settings.models.threads
        )
    except CheckpointError as exc:
        hint = ""
        if weights in settings.demo_checkpoints:
            hint = " (make it with `breastnode models init-demo`)"
        raise ConfigError(f"[models] {exc}{hint}") from exc


@dataclass(frozen=True)
class Analysed:
    result: StudyResult
    sources: Mapping[str, Dataset]  # the analysed source data sets, by SOP Instance UID
    left_out: tuple[LeftOut, ...] = ()  # instances whose pixel data cannot be decoded


class ModelAnalysis:
    """Warm engines for mammography and (when configured) MRI."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = source_options(settings)
        self.engines: dict[str, Predictor] = {
            "mammography": load_engine(settings.mammography_checkpoint, settings)
        }
        if settings.mri_checkpoint is not None:
            self.engines["mri"] = load_engine(settings.mri_checkpoint, settings)
        self.density: Predictor | None = None
        if settings.density_checkpoint is not None:
            from models.serving import CheckpointError, check_density_engine

            self.density = load_engine(settings.density_checkpoint, settings)
            try:
                check_density_engine(self.density)
            except CheckpointError as exc:
                raise ConfigError(f"[models] density: {exc}") from exc

    @property
    def studies_per_batch(self) -> int:
        """How many queued studies the worker may hand over at once (see :meth:`many`)."""
        return self.settings.models.studies_per_batch

    def _sources(self, study: StudyInput) -> StudySources | None:
        sources = read_sources(study, self.options)
        if sources is None:
            return None
        if sources.kind not in self.engines:
            logger.warning(
                "study %s is %s and no model for it is configured ([models] %s): not analysed",
                study.study_instance_uid,
                sources.kind,
                sources.kind,
            )
            return None
        return sources

    def results(self, studies: Sequence[StudyInput]) -> list[Analysed | Exception | None]:
        """Typed results (None: no configured model applies; an exception: that study
        failed), the studies of one kind sharing the network's batches."""
        from models.serving import analyse_studies

        outcomes: list[Analysed | Exception | None] = [None] * len(studies)
        by_kind: dict[str, list[tuple[int, StudySources]]] = {}
        for number, study in enumerate(studies):
            try:
                sources = self._sources(study)
            except Exception as exc:  # one unreadable study must not fail the others
                outcomes[number] = exc
                continue
            if sources is not None:
                by_kind.setdefault(sources.kind, []).append((number, sources))
        for kind, members in by_kind.items():
            batch = [(studies[n].study_instance_uid, s.images) for n, s in members]
            try:
                analysed = analyse_studies(self.engines[kind], batch, FINDING_KINDS[kind])
            except Exception as exc:
                if len(members) > 1:  # find the study that failed: each alone, once
                    for number, _ in members:
                        outcomes[number] = self.results([studies[number]])[0]
                    continue
                outcomes[members[0][0]] = network_failure(exc)
                continue
            for (number, sources), result in zip(members, analysed, strict=True):
                try:
                    result = self._with_density(kind, result, sources)
                except Exception as exc:
                    outcomes[number] = network_failure(exc)
                    continue
                left_out = tuple(LeftOut(uid, why) for uid, why in sources.unreadable)
                outcomes[number] = Analysed(result, sources.datasets, left_out)
        return outcomes

    def _with_density(self, kind: str, result: StudyResult, sources: StudySources) -> StudyResult:
        """The breasts' composition, from the density model, for mammography studies."""
        if self.density is None or kind != "mammography":
            return result
        from models.serving import compositions, with_compositions

        found = compositions(self.density, sources.images)
        return with_compositions(result, found, self.density.manifest.validated_for_clinical_use)

    def result(self, study: StudyInput) -> Analysed | None:
        """The typed result of a study, or None when no configured model applies."""
        [outcome] = self.results([study])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def many(self, studies: Sequence[StudyInput]) -> list[Sequence[Dataset] | Exception]:
        """The result objects of several studies, analysed in shared batches."""
        outcomes: list[Sequence[Dataset] | Exception] = []
        for study, outcome in zip(studies, self.results(studies), strict=True):
            if isinstance(outcome, Exception):
                outcomes.append(outcome)
                continue
            try:
                outcomes.append(self.objects(study, outcome))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def __call__(self, study: StudyInput) -> Sequence[Dataset]:
        return self.objects(study, self.result(study))

    def objects(self, study: StudyInput, analysed: Analysed | None) -> ResultObjects:
        """The DICOM result objects of an analysed study (none when it was not analysed),
        with the instances left out of it."""
        if analysed is None:
            return ResultObjects()
        previous = [dcmread(p.path) for p in study.previous_results]
        built = build_result_objects(
            analysed.sources,
            analysed.result,
            self.settings.results,
            self.settings.node.ae_title,
            study.version,
            previous,
        )
        return ResultObjects(built, analysed.left_out)


def analysis_for(settings: Settings) -> Analysis:
    """The configured analysis: the node's models or a plug-in named by module:function."""
    from node.pipeline.analysis import load_analysis

    if settings.pipeline.analysis == "models":
        return ModelAnalysis(settings)
    return load_analysis(settings.pipeline.analysis)
