"""Machine learning only: preprocessing, networks, inference, training. Knows no network or DICOM I/O."""
