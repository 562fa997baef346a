"""The SOP classes and transfer syntaxes the node accepts, named by pydicom.uid (and
pynetdicom for Verification) rather than written out here."""

from __future__ import annotations

from typing import Final

from pydicom import uid
from pydicom.uid import UID

VERIFICATION: Final = UID("1.2.840.10008.1.1")  # pynetdicom.sop_class.Verification

ACCEPTED_STORAGE: Final[dict[UID, str]] = {
    sop_class: sop_class.name
    for sop_class in (
        uid.DigitalMammographyXRayImageStorageForPresentation,
        uid.DigitalMammographyXRayImageStorageForProcessing,
        uid.BreastTomosynthesisImageStorage,
        uid.BreastProjectionXRayImageStorageForPresentation,
        uid.BreastProjectionXRayImageStorageForProcessing,
        uid.MRImageStorage,
        uid.EnhancedMRImageStorage,
    )
}

# Every standard transfer syntax that carries image pixel data in the data set. Video,
# audio and JPIP-referenced syntaxes carry no stored pixels and are not offered. The three
# JPEG XL syntaxes and Encapsulated Uncompressed postdate pydicom 3.0's names.
ACCEPTED_TRANSFER_SYNTAXES: Final[tuple[UID, ...]] = (
    uid.ImplicitVRLittleEndian,
    uid.ExplicitVRLittleEndian,
    UID("1.2.840.10008.1.2.1.98"),  # Encapsulated Uncompressed Explicit VR Little Endian
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,  # retired, still sent by old devices
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.JPEG2000MCLossless,
    uid.JPEG2000MC,
    UID("1.2.840.10008.1.2.4.110"),  # JPEG XL Lossless
    UID("1.2.840.10008.1.2.4.111"),  # JPEG XL JPEG Recompression
    UID("1.2.840.10008.1.2.4.112"),  # JPEG XL
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.HTJ2K,
    uid.RLELossless,
)
