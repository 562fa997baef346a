"""Walk a data set's elements as PS3.5 7 encodes them, without decoding their values.

Every element's length must lie within its container (the data set, an item, a sequence of
defined length); sequences and items of undefined length must meet their delimiters;
nesting stops at a depth limit; elements stand in ascending tag order, once each (so the
values checked are the values a reader will see). In explicit VR each VR must be one of the
standard's, and the standard's VR for a public element (UN allowed); fixed-size VRs hold
whole values. Only the values the checks need are read (top-level identifying and image
attributes, and every UI value, which must keep the UID rules); everything else is passed
over, so memory stays flat whatever the size.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_is_retired, dictionary_VR

from node.dicom.structure.errors import NotItsClass, StructureBroken
from node.dicom.structure.source import Source, truncated
from node.dicom.uids import loose_uid_problem, unpadded

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010

LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"})
SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL"}
    | {"SS", "ST", "TM", "UI", "UL", "US"}
)
VALUE_UNIT = {"US": 2, "SS": 2, "OW": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "OL": 4, "OF": 4}
VALUE_UNIT |= {"FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8}
UI_READ_LIMIT = 4096  # a multi-valued UI longer than this is not a list of UIDs
WANTED_READ_LIMIT = 8 << 20  # an Extended Offset Table: 8 bytes a frame
MAX_ELEMENTS = 1_000_000  # elements, items and fragments: more than any image carries


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass(frozen=True)
class Encoding:
    implicit: bool
    little: bool

    @property
    def order(self) -> str:
        return "<" if self.little else ">"


IMPLICIT_LITTLE = Encoding(implicit=True, little=True)


@functools.lru_cache(maxsize=4096)
def standard_vr(tag: int) -> str | None:
    """The data dictionary's VR of a public element ("US or SS" when it allows several),
    None for private and unknown ones."""
    if (tag >> 16) % 2:
        return None
    if tag & 0xFFFF == 0:
        return "UL"  # group length
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


@functools.lru_cache(maxsize=4096)
def _retired(tag: int) -> bool:
    try:
        return bool(dictionary_is_retired(tag))
    except KeyError:
        return False


@dataclass(frozen=True)
class Element:
    tag: int
    vr: str
    length: int
    position: int  # of the value's first byte in the data set


# Called with the source positioned at the value of a top-level Pixel Data element of
# undefined length (encapsulated); it must consume up to and with the sequence delimiter.
EncapsulatedReader = Callable[[Source, Encoding], None]


@dataclass
class Walker:
    source: Source
    encoding: Encoding
    max_depth: int
    wanted: frozenset[int]  # top-level tags whose values the checks read
    encapsulated: EncapsulatedReader | None = None  # for top-level Pixel Data
    values: dict[int, bytes] = field(default_factory=dict)
    pixel_data: Element | None = None
    count: int = 0
    on_pixel_data: Callable[[int], None] | None = None  # told where Pixel Data begins

    def walk(self) -> None:
        """The whole data set, to the end of the source."""
        self._items(end=None, depth=0, encoding=self.encoding, top=True)

    def _counted(self) -> None:
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise StructureBroken(f"the data set holds more than {MAX_ELEMENTS} elements")

    def _tag_and_length(self, encoding: Encoding) -> tuple[int, int]:
        group, number, length = struct.unpack(encoding.order + "HHL", self.source.read(8))
        return (group << 16) | number, length

    def _header(self, encoding: Encoding) -> tuple[int, str, int]:
        """(tag, VR, length) of the next element; items and delimiters have VR ""."""
        source, order = self.source, encoding.order
        group, number = struct.unpack(order + "HH", source.read(4))
        tag = (group << 16) | number
        if group == 0xFFFE or encoding.implicit:
            (length,) = struct.unpack(order + "L", source.read(4))
            if group == 0xFFFE:
                return tag, "", length
            return tag, self._implicit_vr(tag, length), length
        raw_vr = source.read(2)
        vr = raw_vr.decode("latin-1")
        if vr in LONG_VRS:
            source.read(2)  # reserved
            (length,) = struct.unpack(order + "L", source.read(4))
        elif vr in SHORT_VRS:
            (length,) = struct.unpack(order + "H", source.read(2))
        else:
            raise StructureBroken(
                f"element {tag_text(tag)} has no valid VR (implicit VR sent where explicit "
                "VR was negotiated?)"
            )
        self._check_vr(tag, vr)
        return tag, vr, length

    @staticmethod
    def _implicit_vr(tag: int, length: int) -> str:
        known = standard_vr(tag)
        if known is None:
            return "SQ" if length == UNDEFINED else "UN"  # PS3.5 6.2.2: undefined is SQ
        return known

    @staticmethod
    def _check_vr(tag: int, vr: str) -> None:
        known = standard_vr(tag)
        if known is None or vr == "UN" or _retired(tag):
            return
        if vr not in known.split(" or "):
            raise StructureBroken(f"element {tag_text(tag)} is encoded as {vr}, not {known}")

    def _items(self, end: int | None, depth: int, encoding: Encoding, top: bool) -> None:
        """The elements of the data set or of an item, up to ``end`` (a defined length), to
        the item delimiter (an item of undefined length) or to the end (the top level)."""
        source = self.source
        previous = -1
        while True:
            if end is not None and source.position >= end:
                if source.position > end:
                    raise StructureBroken("an element runs past the end of its item")
                return
            if source.at_end():
                if top:
                    return
                if end is None:
                    raise StructureBroken("an item of undefined length is never closed")
            self._counted()
            start = source.position
            tag, vr, length = self._header(encoding)
            if tag == ITEM_END and end is None and not top:
                if length != 0:
                    raise StructureBroken("an item delimiter has a non-zero length")
                return
            if tag >> 16 == 0xFFFE:
                raise StructureBroken(f"unexpected item tag {tag_text(tag)} among elements")
            if tag <= previous:
                raise StructureBroken(f"element {tag_text(tag)} is out of order or repeated")
            previous = tag
            if top and tag >> 16 in (0x0000, 0x0002):
                raise StructureBroken(
                    f"command or file meta element {tag_text(tag)} inside the data set"
                )
            if tag == PIXEL_DATA and top and self.on_pixel_data is not None:
                self.on_pixel_data(start)
            self._element(Element(tag, vr, length, source.position), end, depth, encoding, top)

    def _fits(self, length: int, end: int | None) -> None:
        limit = self.source.remaining()
        if end is not None:
            left = end - self.source.position
            limit = left if limit is None else min(limit, left)
        if limit is not None and length > limit:
            raise truncated("an element")

    def _element(
        self, element: Element, end: int | None, depth: int, encoding: Encoding, top: bool
    ) -> None:
        tag, vr, length = element.tag, element.vr, element.length
        if length == UNDEFINED:
            if tag == PIXEL_DATA and vr in ("OB", "OW", "OB or OW"):
                if top:
                    self.pixel_data = element
                if top and self.encapsulated is not None:
                    self.encapsulated(self.source, encoding)
                else:
                    self._fragments(encoding)
            elif vr in ("SQ", "UN"):
                # an UN sequence of undefined length holds implicit VR little endian items
                inner = IMPLICIT_LITTLE if vr == "UN" else encoding
                self._sequence(None, depth + 1, inner)
            else:
                raise StructureBroken(f"element {tag_text(tag)} ({vr}) has undefined length")
            return
        self._fits(length, end)
        unit = VALUE_UNIT.get(vr)
        if unit is not None and length % unit:
            raise StructureBroken(f"element {tag_text(tag)} ({vr}) holds a partial value")
        if vr == "SQ":
            self._sequence(self.source.position + length, depth + 1, encoding)
            return
        if tag == PIXEL_DATA and top:
            self.pixel_data = element
        if vr == "UI" or (top and tag in self.wanted and tag != PIXEL_DATA):
            if length > (UI_READ_LIMIT if vr == "UI" else WANTED_READ_LIMIT):
                raise StructureBroken(f"element {tag_text(tag)} ({vr}) is implausibly long")
            value = self.source.read(length)
            if vr == "UI" and not (top and tag in self.wanted):
                self._check_uids(tag, value)  # the identifying ones get the full rules
            if top and tag in self.wanted:
                self.values[tag] = value
            return
        self.source.skip(length)

    @staticmethod
    def _check_uids(tag: int, value: bytes) -> None:
        if not value:
            return
        for part in unpadded(value).split("\\"):
            problem = loose_uid_problem(part)
            if problem:
                raise NotItsClass(f"the UID in {tag_text(tag)} {problem}")

    def _fragments(self, encoding: Encoding) -> None:
        """Encapsulated Pixel Data the check does not look into (an icon's, or one in a
        native syntax, refused afterwards): items of defined length, then the delimiter."""
        while True:
            self._counted()
            tag, length = self._tag_and_length(encoding)
            if tag == SEQUENCE_END and length == 0:
                return
            if tag != ITEM or length == UNDEFINED:
                raise StructureBroken("encapsulated Pixel Data holds something but fragments")
            self._fits(length, None)
            self.source.skip(length)

    def _sequence(self, end: int | None, depth: int, encoding: Encoding) -> None:
        if depth > self.max_depth:
            raise StructureBroken(f"sequences nest deeper than {self.max_depth} levels")
        source = self.source
        while True:
            if end is not None and source.position >= end:
                if source.position > end:
                    raise StructureBroken("an item runs past the end of its sequence")
                return
            if end is None and source.at_end():
                raise StructureBroken("a sequence of undefined length is never closed")
            self._counted()
            tag, length = self._tag_and_length(encoding)
            if tag == SEQUENCE_END:
                if end is not None or length != 0:
                    raise StructureBroken("a misplaced sequence delimiter")
                return
            if tag != ITEM:
                raise StructureBroken(f"{tag_text(tag)} where a sequence item was expected")
            if length == UNDEFINED:
                self._items(None, depth, encoding, top=False)
            else:
                self._fits(length, end)
                self._items(source.position + length, depth, encoding, top=False)
