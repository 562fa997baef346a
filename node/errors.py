"""The node's exception root: library errors are wrapped here at the boundary."""


class NodeError(Exception):
    """Base of every error the node raises on purpose."""


class ConfigError(NodeError):
    """The configuration is missing, malformed or invalid; the message says what to fix."""


class PeerError(NodeError):
    """A DICOM peer could not be reached or refused what we asked."""
