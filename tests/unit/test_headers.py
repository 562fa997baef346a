"""Which breast an image's header names: one breast, both, or neither."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from models.headers import laterality_of, shows_both_breasts


def header(**elements: str) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def enhanced(frame_laterality: str) -> Dataset:
    anatomy = Dataset()
    anatomy.FrameLaterality = frame_laterality
    group = Dataset()
    group.FrameAnatomySequence = Sequence([anatomy])
    ds = Dataset()
    ds.SharedFunctionalGroupsSequence = Sequence([group])
    return ds


def test_one_breast_from_image_series_or_frame_laterality() -> None:
    assert laterality_of(header(ImageLaterality="l ")) == "L"
    assert laterality_of(header(ImageLaterality="B", Laterality="R")) == "R"
    assert laterality_of(enhanced("R")) == "R"
    assert laterality_of(header(ImageLaterality="B")) is None
    assert laterality_of(header()) is None


def test_both_breasts_wherever_the_header_says_so() -> None:
    assert shows_both_breasts(header(ImageLaterality="B"))
    assert shows_both_breasts(enhanced("B"))
    assert not shows_both_breasts(header(ImageLaterality="L"))
    assert not shows_both_breasts(header(ImageLaterality="U"))
    assert not shows_both_breasts(header())
