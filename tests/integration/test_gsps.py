"""Presentation states with the findings as graphic annotations on the source images."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.results.gsps import LAYER, presentation_states
from node.results.provenance import NOT_FOR_CLINICAL_USE, ResultContext, device_uid_for
from tests.support.results import Case, mammography_case, mr_case, tomosynthesis_case
from tests.support.validators import validated


@pytest.mark.parametrize(
    ("make", "expected_states"),
    [(mammography_case, 2), (tomosynthesis_case, 1), (mr_case, 1)],
    ids=["mg", "tomosynthesis", "mr"],
)
def test_presentation_states(make: object, expected_states: int, tmp_path: Path) -> None:
    case: Case = make()  # type: ignore[operator]
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    states = presentation_states(sources, case.result, context)
    assert len(states) == expected_states
    # one series per breast: General Series Laterality holds for every state in it
    series = {s.SeriesInstanceUID: s.Laterality for s in states}
    assert len(series) == len({s.Laterality for s in states})
    annotated = 0
    for number, state in enumerate(states):
        back = validated(state, tmp_path / f"pr-{number}.dcm", f"{case.name} GSPS {number}")
        assert back.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE)
        assert back.Laterality in {"L", "R"}
        for annotation in back.get("GraphicAnnotationSequence", []):
            assert annotation.GraphicLayer == LAYER
            annotated += len(annotation.GraphicObjectSequence)
            labels = [t.UnformattedTextValue for t in annotation.TextObjectSequence]
            assert all(any(c.isdigit() for c in label) for label in labels)
    assert annotated == sum(len(i.findings) for i in case.result.images)
