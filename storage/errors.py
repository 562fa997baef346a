"""Errors raised by the storage layer; the node wraps them at its boundary."""


class StorageError(Exception):
    """Base of storage failures (database unreachable, file store unusable)."""


class DuplicateInstanceError(StorageError):
    """The SOP Instance UID is already in the index; the earlier copy is kept."""
