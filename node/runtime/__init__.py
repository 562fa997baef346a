"""The running node's processes: the supervisor that owns the port and hands connections to
receiver processes, the pipeline process, their lifetimes and the monitoring endpoint. It
composes node.dicom, node.pipeline and node.audit; only the CLI imports it."""
