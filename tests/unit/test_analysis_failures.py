"""Analysis failures: the configured retry policy, and which model errors are permanent
(mapped at the model boundary), without a database or a network."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.serving.checkpoint import CheckpointError
from models.synthetic import SyntheticPatient, mammogram, write
from node.config import Settings
from node.pipeline.analysis import InputInstance, PermanentAnalysisError, StudyInput
from node.pipeline.analysis_worker import analysis_retry
from node.pipeline.model_analysis import network_failure, read_sources
from node.pipeline.retry import RetryPolicy


def test_the_default_policy_is_the_one_analysis_always_had() -> None:
    assert analysis_retry(Settings()) == RetryPolicy(
        base=timedelta(seconds=30), cap=timedelta(minutes=10), max_age=timedelta(hours=6)
    )


def test_the_policy_follows_the_configuration() -> None:
    configured = Settings(
        pipeline={
            "retry_backoff_base_seconds": 5,
            "retry_backoff_cap_seconds": 50,
            "retry_max_age_hours": 1,
            "retry_max_attempts": 4,
        }
    )
    assert analysis_retry(configured) == RetryPolicy(
        base=timedelta(seconds=5),
        cap=timedelta(seconds=50),
        max_age=timedelta(hours=1),
        max_attempts=4,
    )


def test_a_cap_below_the_base_is_refused() -> None:
    with pytest.raises(ValidationError, match="retry_backoff_cap_seconds"):
        Settings(pipeline={"retry_backoff_base_seconds": 60, "retry_backoff_cap_seconds": 30})


def study_of(*paths: Path) -> StudyInput:
    instances = tuple(InputInstance(f"2.25.{n}", "", "", p) for n, p in enumerate(paths))
    return StudyInput("2.25.99", 1, instances, ())


def test_an_undecodable_pixel_stream_is_permanent(tmp_path: Path) -> None:
    from models.serving.sources import SourceOptions

    ds = mammogram(SyntheticPatient(), rows=32, columns=32, seed=1)
    ds.PixelData = ds.PixelData[:10]  # far fewer bytes than rows x columns
    path = write(ds, tmp_path)
    with pytest.raises(PermanentAnalysisError, match="cannot be decoded"):
        read_sources(study_of(path), SourceOptions())


def test_an_unreadable_stored_instance_is_permanent(tmp_path: Path) -> None:
    from models.serving.sources import SourceOptions

    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"not a DICOM file at all")
    with pytest.raises(PermanentAnalysisError, match="cannot be used"):
        read_sources(study_of(path), SourceOptions())


def test_a_study_without_analysable_images_is_not_analysed(tmp_path: Path) -> None:
    from models.serving.sources import SourceOptions

    assert read_sources(study_of(), SourceOptions()) is None


def test_a_checkpoint_that_does_not_fit_is_permanent_and_a_device_hiccup_is_not() -> None:
    for cause in (CheckpointError("wrong task"), ValueError("model input (8, 8) is not (4, 4)")):
        mapped = network_failure(cause)
        assert isinstance(mapped, PermanentAnalysisError)
        assert mapped.__cause__ is cause
        assert "does not fit" in str(mapped)
    busy = RuntimeError("CUDA out of memory")
    assert network_failure(busy) is busy


def test_a_file_that_cannot_be_read_just_now_is_not_permanent(tmp_path: Path) -> None:
    """An I/O error (a file briefly missing, no file handles left) may pass: the job is
    retried, not dead-lettered. A stored instance that reads but is not DICOM is permanent."""
    from models.serving.sources import SourceError, SourceOptions

    with pytest.raises(SourceError) as raised:
        read_sources(study_of(tmp_path / "not-there.dcm"), SourceOptions())
    assert not isinstance(raised.value, PermanentAnalysisError)
    assert isinstance(raised.value.__cause__, OSError)


def test_a_view_that_cannot_be_decoded_is_left_out_and_the_others_kept(tmp_path: Path) -> None:
    from models.serving.sources import SourceOptions

    patient = SyntheticPatient()
    good = mammogram(patient, rows=32, columns=32, seed=1)
    bad = mammogram(patient, study_uid=good.StudyInstanceUID, rows=32, columns=32, seed=2)
    bad.PixelData = bad.PixelData[:10]
    sources = read_sources(study_of(write(good, tmp_path), write(bad, tmp_path)), SourceOptions())
    assert sources is not None
    assert [image.sop_instance_uid for image in sources.images] == [good.SOPInstanceUID]
    assert sources.unreadable == (
        (bad.SOPInstanceUID, "pixel data cannot be decoded (ValueError)"),
    )


def test_a_stream_no_decoder_reads_is_permanent_unless_none_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydicom raises RuntimeError when every decoder refuses a stream, and when none is
    installed: the first is the stored object's fault, the second the installation's."""
    from pydicom.uid import JPEG2000Lossless

    from models.serving import sources as sources_module
    from models.serving.sources import PixelDataError, SourceOptions, decoded

    ds = mammogram(SyntheticPatient(), rows=32, columns=32, seed=1)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    stream = bytearray(ds.PixelData)
    start = stream.index(b"\xff\x4f\xff\x51") + 4
    stream[start:-2] = b"\x5a" * (len(stream) - 2 - start)
    ds.PixelData = bytes(stream)
    with pytest.raises(PixelDataError, match="every available decoder refused it"):
        decoded(ds)
    with pytest.raises(PermanentAnalysisError, match="cannot be decoded \\(RuntimeError\\)"):
        read_sources(study_of(write(ds, tmp_path)), SourceOptions())
    monkeypatch.setattr(sources_module, "_decoder_available", lambda _ds: False)
    with pytest.raises(RuntimeError) as raised:
        decoded(ds)
    assert not isinstance(raised.value, PixelDataError)
