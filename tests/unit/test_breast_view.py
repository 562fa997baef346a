"""Which breast and which view an image's header names, read the same way everywhere."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import DigitalMammographyXRayImageStorageForPresentation, ExplicitVRLittleEndian

from models.serving.breast_view import laterality_of, shows_both_breasts, view_of
from node.dicom.header import records_from
from node.pipeline.completion import screening_view
from storage.pending_studies import ViewFacts


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


# modalities send lower case and padding; pydicom warns on such CS values, the reader copes
@pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")
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


def coded_view(code: str, scheme: str, laterality: str = "L", position: str = "") -> Dataset:
    """A mammogram's header whose view is given by View Code Sequence alone."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, scheme, "view"
    ds = header(ImageLaterality=laterality, ViewPosition=position)
    ds.ViewCodeSequence = Sequence([item])
    return ds


SNOMED_RT_AND_CT = [
    ("R-10242", "SRT", "CC"),
    ("399162004", "SCT", "CC"),
    ("R-10226", "SRT", "MLO"),
    ("399368009", "SCT", "MLO"),
    ("R-10224", "SRT", "ML"),
    ("R-1024B", "SRT", "XCCL"),
]


@pytest.mark.parametrize(("code", "scheme", "view"), SNOMED_RT_AND_CT)
def test_view_from_snomed_ct_or_snomed_rt_codes(code: str, scheme: str, view: str) -> None:
    assert view_of(coded_view(code, scheme)) == view


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")
def test_coded_view_wins_over_view_position() -> None:
    assert view_of(coded_view("399101009", "SCT", position="CC")) == "XCCL"
    assert view_of(header(ViewPosition=" mlo")) == "MLO"
    assert view_of(header()) is None


@pytest.mark.parametrize(("code", "scheme", "view"), SNOMED_RT_AND_CT)
def test_completion_reads_the_view_the_models_read(code: str, scheme: str, view: str) -> None:
    """A study that completes as four views reaches the model with those views: completion
    reads the index's columns, the models read the data set, and both say the same."""
    ds = coded_view(code, scheme, laterality="R")
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "SYNTHETIC", "1.2.3", "1.2.3.4"
    mg = str(DigitalMammographyXRayImageStorageForPresentation)
    ds.SOPClassUID, ds.SOPInstanceUID = mg, "1.2.3.4.5"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    instance = records_from(ds, mg, "1.2.3.4.5").instance
    facts = ViewFacts(
        mg, "MG", instance.image_laterality, instance.view_position, instance.view_code
    )
    expected = ("R", view) if view in {"CC", "MLO"} else None
    assert screening_view(facts) == expected
    assert (laterality_of(ds), view_of(ds)) == ("R", view)
