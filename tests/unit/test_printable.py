"""Received strings are logged as one line of printable ASCII, bounded."""

from __future__ import annotations

from node.printable import one_line, printable


def test_control_and_non_ascii_characters_are_escaped() -> None:
    assert printable("1.2.840.10008.5.1.4.1.1.1.2") == "1.2.840.10008.5.1.4.1.1.1.2"
    assert printable("1.2\n3") == "1.2\\n3"
    assert printable("1.2\x003") == "1.2\\x003"
    assert printable("1.2.\u00e9") == "1.2.\\xe9"
    assert printable("a\\nb") == "a\\\\nb"  # a backslash cannot pass for an escape


def test_long_values_are_cut_with_their_length_said() -> None:
    shown = printable("1" * 70_000)
    assert shown == "1" * 96 + "... (70000 characters)"


def test_a_message_keeps_printable_text_and_loses_its_line_breaks() -> None:
    assert (
        one_line("stored 3 instances of Müller's study") == "stored 3 instances of Müller's study"
    )
    assert one_line("a\nb\tc") == "a\\nb\\tc"


def test_a_failure_is_told_without_another_librarys_message() -> None:
    from models.errors import ModelError
    from node.errors import NodeError
    from node.printable import failure_text

    assert failure_text(NodeError("checkpoint missing")) == "NodeError: checkpoint missing"
    assert failure_text(ModelError("no view")) == "ModelError: no view"
    try:
        int("19601345x")
    except ValueError as exc:
        told = failure_text(exc)
    here = f"{__name__}.test_a_failure_is_told_without_another_librarys_message"
    assert told == f"ValueError in {here} (message withheld)"
    assert failure_text(RuntimeError("not raised")) == "RuntimeError"
