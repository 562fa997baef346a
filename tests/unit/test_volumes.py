"""Tomosynthesis slabs and the breast MRI DCE projection on synthetic series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.serving.volumes import (
    MrSeries,
    choose_dce_pair,
    dce_projection,
    fallback_series,
    read_volume,
    slabs,
)
from models.synthetic import SyntheticPatient, mr_series


def test_slabs_cover_every_frame_and_keep_the_brightest() -> None:
    frames = np.zeros((10, 8, 8), dtype=np.float32)
    frames[6, 3, 4] = 5.0
    made = slabs(frames, thickness=4, stride=3)
    assert [(s.first_frame, s.last_frame) for s in made] == [(1, 4), (4, 7), (7, 10)]
    [with_marker] = [s for s in made if s.image[3, 4] == 5.0 and s.first_frame == 4]
    assert with_marker.center_frame == 5
    assert slabs(frames[:2], thickness=4)[0].last_frame == 2
    with pytest.raises(ValueError):
        slabs(frames[0], 2)


def series(description: str, time: float | None, uid: str = "1.2") -> MrSeries:
    return MrSeries(uid + description, description, time, ())


def test_dce_pair_by_description_and_time() -> None:
    exam = [
        series("T2 STIR", 100),
        series("DYN T1 FS PRE", 200),
        series("DYN T1 FS POST 2", 500),
        series("DYN T1 FS POST 1", 300),
    ]
    pair = choose_dce_pair(exam)
    assert pair is not None
    assert (pair[0].description, pair[1].description) == ("DYN T1 FS PRE", "DYN T1 FS POST 1")
    assert choose_dce_pair([series("T2 STIR", 1), series("DWI", 2)]) is None
    assert choose_dce_pair([series("post 1", 100), series("pre", 300)]) is None  # post before
    fallback = fallback_series([series("T2 STIR", 1), series("T1 AX", 2)])
    assert fallback is not None and fallback.description == "T1 AX"


def test_dce_projection_shows_the_enhancing_lesion(tmp_path: Path) -> None:
    patient = SyntheticPatient()
    pre_paths = mr_series(tmp_path / "pre", patient, "1.2.3", "SYN T1 PRE")
    post_paths = mr_series(tmp_path / "post", patient, "1.2.3", "SYN T1 POST 1", enhancement=800)
    pre, post = read_volume(pre_paths), read_volume(post_paths)
    assert pre.shape == (6, 48, 48)
    assert post[3, 22, 32] > pre[3, 22, 32] + 500  # ordered along the normal: slice 4 is [3]
    projection = dce_projection(pre, post)
    row, column = np.unravel_index(np.argmax(projection), projection.shape)
    assert 20 <= row < 26 and 30 <= column < 36
