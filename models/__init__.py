"""Machine learning only: preprocessing, networks, inference, training.

Works on arrays and data sets; knows no network and no DICOM I/O.
"""
