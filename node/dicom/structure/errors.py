"""What the structural check refuses, and with which C-STORE status."""

from __future__ import annotations

from node.dicom.header import HeaderMismatch, HeaderUnreadable


class StructureBroken(HeaderUnreadable):
    """The bytes are not a well-formed data set in the negotiated transfer syntax: an element
    runs past its container, a sequence is never closed, a pixel stream is malformed
    (answered 0xC000, cannot understand)."""


class NotItsClass(HeaderMismatch):
    """The data set is well formed but is not what the command and the presentation context
    say: another SOP class or instance, invalid identifying UIDs, missing image attributes
    (answered 0xA900, data set does not match SOP class)."""
