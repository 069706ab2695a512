"""The user-facing error hierarchy.

Every failure a user can cause is a `VidlabError` whose message names the file (or setting) and
what is wrong; the CLI prints it on one line and exits non-zero without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class VidlabError(Exception):
    """Base of every user-facing vidlab error."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class VideoError(VidlabError):
    """A video file cannot be used."""


class VideoOpenError(VideoError):
    """The file is missing, empty, not a video, or has no video stream."""


class VideoDecodeError(VideoError):
    """Frames that were asked for cannot be decoded (corrupt or truncated data)."""


class VideoTooLongError(VideoError):
    """A video is longer than the limit its reader was given (a server's `--max-duration-s`)."""


class VideoWriteError(VideoError):
    """A video could not be written or transcoded."""


class StreamError(VidlabError):
    """A live source (camera URL, device, stream) cannot be opened or read."""


class OutputExistsError(VidlabError):
    """An output path exists and the user did not ask to overwrite it."""

    def __init__(self, message: str = "exists (pass --overwrite to replace it)",
                 path: str | Path | None = None):
        super().__init__(message, path)


class ConfigError(VidlabError):
    """A configuration file or override is invalid."""


class DatasetError(VidlabError):
    """A manifest or dataset folder cannot be used."""


class BundleError(VidlabError):
    """A model bundle is missing, incomplete or inconsistent."""


class LibraryError(VidlabError):
    """A library index (`NAME.vlx/`) is missing, unreadable, or was built otherwise (model,
    windows) than asked; or a search names an unknown label or video."""


class ModelError(VidlabError):
    """An unknown model name, bad model arguments, or weights that do not fit."""


class CheckpointError(VidlabError):
    """A training checkpoint is missing or cannot be resumed from."""


class TrainingError(VidlabError):
    """Training cannot go on (e.g. the loss stays NaN/inf)."""


class EngineError(VidlabError):
    """The engine spreading per-file work could not run it (Ray missing, cluster unreachable)."""
