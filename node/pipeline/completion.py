"""When is a study ready for analysis?

A mammography study is complete as soon as the four screening views (R CC, L CC, R MLO,
L MLO) are there. Anything else (a partial mammogram, tomosynthesis, MRI) is complete once
no instance has arrived for the quiet period. A study that gets a new instance after its
analysis was opened is pending again, and the next sweep opens a new version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydicom.uid import (
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing,
)
from sqlalchemy import Engine

from models.serving import side_from, view_from
from storage.pending_studies import StudyProgress, ViewFacts, open_version, pending_studies

logger = logging.getLogger(__name__)

ANALYSIS = "analysis"
SCREENING_VIEWS = frozenset({("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")})
MAMMOGRAPHY = frozenset(
    {
        DigitalMammographyXRayImageStorageForPresentation,
        DigitalMammographyXRayImageStorageForProcessing,
    }
)

SCREENING_PROJECTIONS = frozenset({"CC", "MLO"})


def screening_view(instance: ViewFacts) -> tuple[str, str] | None:
    """(laterality, CC/MLO) of a mammography image, or None if it is neither view; read by
    the same rules as the models read the image (models.serving.breast_view)."""
    if instance.sop_class_uid not in MAMMOGRAPHY:
        return None
    laterality = side_from([instance.laterality])
    view = view_from(instance.view_position, instance.view_code)
    if laterality is None or view not in SCREENING_PROJECTIONS:
        return None
    return laterality, view


def has_screening_views(instances: Iterable[ViewFacts]) -> bool:
    seen = {view for view in map(screening_view, instances) if view}
    return seen >= SCREENING_VIEWS


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


def readiness(progress: StudyProgress, now: datetime, quiet: timedelta) -> Readiness:
    quiet_for = now - progress.last_received_at
    reopened = progress.analysed_version > 0
    if not reopened and has_screening_views(progress.instances):
        return Readiness(True, "four screening views present")
    if quiet_for >= quiet:
        return Readiness(True, f"no new instance for {quiet_for.total_seconds():.0f} s")
    return Readiness(False, "waiting for the quiet period")


def sweep(engine: Engine, now: datetime, quiet: timedelta) -> list[int]:
    """Open a new analysis version for every pending study that is ready; returns job ids."""
    opened = []
    for progress in pending_studies(engine):
        state = readiness(progress, now, quiet)
        if not state.ready:
            continue
        job_id = open_version(engine, progress, ANALYSIS, now)
        if job_id is None:
            continue
        opened.append(job_id)
        logger.info(
            "study %s complete (%s): analysis version %d queued as job %d",
            progress.study_instance_uid,
            state.reason,
            progress.analysed_version + 1,
            job_id,
        )
    return opened
