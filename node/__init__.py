"""BreastNode: DICOM node that receives breast imaging, analyses it and reports back to PACS."""

__version__ = "0.1.0"
