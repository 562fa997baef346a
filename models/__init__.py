"""Machine learning only: preprocessing, networks, inference, training.

Works on arrays, data sets and stored files; knows no DICOM network and no database.
"""
