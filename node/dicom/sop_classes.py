"""The SOP classes and transfer syntaxes the node accepts, by name."""

from __future__ import annotations

from typing import Final

from pydicom.uid import UID

VERIFICATION: Final = UID("1.2.840.10008.1.1")

MG_FOR_PRESENTATION: Final = UID("1.2.840.10008.5.1.4.1.1.1.2")
MG_FOR_PROCESSING: Final = UID("1.2.840.10008.5.1.4.1.1.1.2.1")
BREAST_TOMOSYNTHESIS: Final = UID("1.2.840.10008.5.1.4.1.1.13.1.3")
BREAST_PROJECTION_FOR_PRESENTATION: Final = UID("1.2.840.10008.5.1.4.1.1.13.1.4")
BREAST_PROJECTION_FOR_PROCESSING: Final = UID("1.2.840.10008.5.1.4.1.1.13.1.5")
MR: Final = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_MR: Final = UID("1.2.840.10008.5.1.4.1.1.4.1")

ACCEPTED_STORAGE: Final[dict[UID, str]] = {
    MG_FOR_PRESENTATION: "Digital Mammography X-Ray Image Storage - For Presentation",
    MG_FOR_PROCESSING: "Digital Mammography X-Ray Image Storage - For Processing",
    BREAST_TOMOSYNTHESIS: "Breast Tomosynthesis Image Storage",
    BREAST_PROJECTION_FOR_PRESENTATION: "Breast Projection X-Ray Image Storage - For Presentation",
    BREAST_PROJECTION_FOR_PROCESSING: "Breast Projection X-Ray Image Storage - For Processing",
    MR: "MR Image Storage",
    ENHANCED_MR: "Enhanced MR Image Storage",
}

# Every standard transfer syntax that carries image pixel data in the data set. Video,
# audio and JPIP-referenced syntaxes carry no stored pixels and are not offered.
ACCEPTED_TRANSFER_SYNTAXES: Final[tuple[UID, ...]] = tuple(
    UID(uid)
    for uid in (
        "1.2.840.10008.1.2",  # Implicit VR Little Endian
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2.1.98",  # Encapsulated Uncompressed Explicit VR Little Endian
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old devices)
        "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
        "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless (Process 14)
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
        "1.2.840.10008.1.2.4.91",  # JPEG 2000
        "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 Multi-component Lossless
        "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2 Multi-component
        "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
        "1.2.840.10008.1.2.4.111",  # JPEG XL JPEG Recompression
        "1.2.840.10008.1.2.4.112",  # JPEG XL
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
        "1.2.840.10008.1.2.4.203",  # HTJ2K
        "1.2.840.10008.1.2.5",  # RLE Lossless
    )
)
