"""The audit trail: PS3.15 A.5 messages, the per-association record of what was received,
and shipping to the site's syslog. Below both node.dicom and node.pipeline, which use it."""
