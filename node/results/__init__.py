"""DICOM result objects built from a model's StudyResult: SRs, CAD SR, SC overlays, GSPS."""
