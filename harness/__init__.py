"""Real peers and a node subprocess on loopback, for the tests and the benchmarks alike:
free ports, waiting for a condition, dcmtk's tools, Orthanc (Debian package),
``breastnode serve``, a TCP proxy that plays a failing network or database, and the kill
rounds. Never shipped with the node."""
