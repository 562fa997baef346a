"""The structural check every received data set passes before it is acknowledged."""

from node.dicom.structure.check import Announced, Checked, Limits, check_structure
from node.dicom.structure.errors import NotItsClass, StructureBroken

__all__ = ["Announced", "Checked", "Limits", "NotItsClass", "StructureBroken", "check_structure"]
