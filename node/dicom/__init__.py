"""DICOM networking: the Storage SCP, the SCU and the vocabulary they share."""
