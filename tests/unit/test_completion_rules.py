"""Study completion rules, on plain facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from node.pipeline.completion import has_screening_views, readiness, screening_view
from storage.pending_studies import StudyProgress, ViewFacts

MG = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
TOMO = "1.2.840.10008.5.1.4.1.1.13.1.3"
MR = "1.2.840.10008.5.1.4.1.1.4"
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
QUIET = timedelta(seconds=30)


def mg(
    lat: str | None, view: str | None = None, code: str | None = None, sop: str = MG
) -> ViewFacts:
    return ViewFacts(sop, "MG", lat, view, code)


def progress(*instances: ViewFacts, version: int = 0, last: datetime = T0) -> StudyProgress:
    return StudyProgress("1.2.3", version, None, last, tuple(instances), len(instances))


FOUR = (mg("R", "CC"), mg("L", "CC"), mg("R", "MLO"), mg("L", "MLO"))


def test_views_from_view_position_or_view_code() -> None:
    assert screening_view(mg("R", "CC")) == ("R", "CC")
    assert screening_view(mg("l", "mlo")) == ("L", "MLO")
    assert screening_view(mg("L", None, "399162004")) == ("L", "CC")
    assert screening_view(mg("R", "", "R-10226")) == ("R", "MLO")
    assert screening_view(mg("R", "XCCL")) is None
    assert screening_view(mg(None, "CC")) is None
    assert screening_view(ViewFacts(MR, "MR", "R", "CC", None)) is None


def test_four_views_complete_at_once() -> None:
    assert has_screening_views(FOUR)
    assert has_screening_views((*FOUR[:3], mg("L", "MLO", sop=MG_PROCESSING)))
    assert not has_screening_views(FOUR[:3])
    assert not has_screening_views((*FOUR[:3], mg("R", "MLO")))
    state = readiness(progress(*FOUR), now=T0, quiet=QUIET)
    assert state.ready and "four screening views" in state.reason


def test_partial_mammogram_tomosynthesis_and_mri_wait_for_quiet() -> None:
    for study in (
        progress(*FOUR[:3]),
        progress(ViewFacts(TOMO, "MG", "L", "CC", None)),
        progress(ViewFacts(MR, "MR", None, None, None)),
    ):
        assert not readiness(study, now=T0 + timedelta(seconds=29), quiet=QUIET).ready
        assert readiness(study, now=T0 + timedelta(seconds=30), quiet=QUIET).ready


def test_reopened_study_waits_for_quiet_even_with_four_views() -> None:
    reopened = progress(*FOUR, mg("L", "CC"), version=1)
    assert not readiness(reopened, now=T0 + timedelta(seconds=5), quiet=QUIET).ready
    assert readiness(reopened, now=T0 + timedelta(seconds=31), quiet=QUIET).ready
