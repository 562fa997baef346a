"""What sending stored objects to a peer reports, object by object. It sits below both
node.dicom, whose SCU sends, and node.pipeline, whose delivery decides what each outcome
means, so that neither imports the other: the runtime hands the delivery its sender."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydicom.uid import UID

from node.config import NodeSettings, PeerSettings


class Unsent(StrEnum):
    """Why an object got no C-STORE status. The delivery policy decides what each means."""

    NO_PORT = "no port"
    UNREADABLE = "unreadable"
    REJECTED_PERMANENT = "association rejected (permanent)"
    REJECTED_TRANSIENT = "association rejected (transient)"
    UNREACHABLE = "unreachable"
    CONTEXT_REJECTED = "presentation context rejected"
    UNENCODABLE = "unencodable"
    NO_RESPONSE = "no response"
    ASSOCIATION_LOST = "association lost"


@dataclass(frozen=True)
class StoreOutcome:
    """The peer's status for one object, or why it has none (``unsent``)."""

    status: int | None
    unsent: Unsent | None
    detail: str
    transfer_syntax: UID | None = None


class Sender(Protocol):
    """Sends stored files to a peer over one association, yielding one outcome per path in
    order as soon as it is known; closing the generator releases the association."""

    def __call__(
        self,
        node: NodeSettings,
        peer: PeerSettings,
        paths: Sequence[Path],
        timeout_s: float,
        scratch: Path | None = None,
    ) -> Generator[StoreOutcome, None, None]: ...
