"""The models' exception root: every error the models raise on purpose derives from
ModelError, so a caller can tell "this input or checkpoint cannot be used" from a bug."""


class ModelError(Exception):
    """Base of the models' own failures (a checkpoint, a data set, a stored image)."""
