"""Errors that reach the user as one clear paragraph instead of a traceback.

Every error raised for bad input (a missing dataset, a corrupt image, a bad
config key, an unusable checkpoint, a diverged run) derives from
:class:`SiambenchError`; the command line prints its message and exits with
status 2, so scripts can tell bad input from a crash.
"""


class SiambenchError(Exception):
    """Base class of the errors the command line reports without a traceback."""


class ConfigError(SiambenchError):
    """A preset or a ``key=value`` override is unknown or has the wrong type."""


class DatasetNotFoundError(SiambenchError):
    """A dataset's files are not where the registry expects them."""


class CorruptImageError(SiambenchError):
    """An image file could not be decoded."""

    def __init__(self, path, reason=None):
        # One-argument form too, so DataLoader workers can re-raise it.
        self.path = str(path)
        super().__init__(f"could not decode image {path}: {reason}" if reason is not None else str(path))


class CheckpointError(SiambenchError):
    """A checkpoint is missing, partial, or not of a known layout."""


class TrainingDivergedError(SiambenchError):
    """The loss became NaN or infinite."""


class EngineNotInstalledError(SiambenchError):
    """An optional engine (detectron2, mmsegmentation) cannot be imported; ``eval-all`` records the stage as skipped."""
