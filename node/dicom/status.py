"""The C-STORE statuses the node answers with, named (PS3.4 B.2.3, PS3.7 C)."""

from __future__ import annotations

from enum import IntEnum


class StoreStatus(IntEnum):
    SUCCESS = 0x0000
    # Refused: out of resources. Transient: the sender should retry later.
    OUT_OF_RESOURCES = 0xA700
    # Error: data set does not match SOP class (also: its UIDs differ from the command's).
    DATASET_MISMATCH = 0xA900
    # Error: cannot understand (the data set does not parse).
    CANNOT_UNDERSTAND = 0xC000
    # Failure: processing failure; an unexpected error inside the node.
    PROCESSING_FAILURE = 0x0110

    @property
    def is_success(self) -> bool:
        return self is StoreStatus.SUCCESS
