"""Real peers and a node subprocess on loopback, for the tests and the benchmarks alike:
free ports, waiting for a condition, dcmtk's tools, Orthanc (Debian package) and
``breastnode serve``. Never shipped with the node."""
