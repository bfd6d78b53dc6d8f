"""Errors that name the problem. The CLI prints their message on one line and exits non-zero."""


class CrowdwatchError(Exception):
    """Base of every error crowdwatch reports to a user."""


class SourceError(CrowdwatchError):
    """A video file, image folder, stream or webcam could not be opened or read."""


class ConfigError(CrowdwatchError):
    """An event configuration is malformed; the message lists every problem found."""


class EstimatorError(CrowdwatchError):
    """A model could not be loaded or run; the message names the model and the problem."""


class OutputError(CrowdwatchError):
    """A run cannot write where it was asked to (a folder holding another run, a file)."""


class UnsafePathError(CrowdwatchError):
    """A path read from the store or a config leads outside the folder it must stay in."""
