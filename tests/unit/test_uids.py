"""UIDs as PS3.5 9.1 defines them."""

from __future__ import annotations

import pytest

from node.dicom.uids import loose_uid_problem, uid_problem, unpadded


@pytest.mark.parametrize(
    "value", ["1.2.840.10008.5.1.4.1.1.1.2", "0", "1.0.2", "2.25." + "9" * 59, "1.2.3.10"]
)
def test_valid_uids(value: str) -> None:
    assert uid_problem(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("1." + "2" * 63, "is longer than 64 characters"),
        ("1.2..3", "has an empty component"),
        (".1.2", "has an empty component"),
        ("1.2.", "has an empty component"),
        ("1.2.03", "has a component with a leading zero"),
        ("1.2/3", "holds characters other than digits and dots"),
        ("1.2\x003", "holds characters other than digits and dots"),
        ("1.2\n3", "holds characters other than digits and dots"),
        ("1.2.\u00e9", "holds characters other than digits and dots"),
        ("1.2.٣", "holds characters other than digits and dots"),  # a non-ASCII digit
        ("1.2 3", "holds characters other than digits and dots"),
    ],
)
def test_invalid_uids_say_which_rule_they_break(value: str, problem: str) -> None:
    assert uid_problem(value) == problem


def test_references_may_have_leading_zeros_and_be_empty() -> None:
    assert loose_uid_problem("1.2.03") is None
    assert loose_uid_problem("") is None
    assert loose_uid_problem("1.2..3") == "has an empty component"
    assert loose_uid_problem("1.2/3") == "holds characters other than digits and dots"


def test_one_pad_byte_is_removed() -> None:
    assert unpadded(b"1.2.3\x00") == "1.2.3"
    assert unpadded(b"1.2.3 ") == "1.2.3"
    assert unpadded(b"1.2.3\x00\x00") == "1.2.3\x00"  # refused then: one pad byte only
    assert uid_problem(unpadded("1.2.\u00e9".encode())) is not None
