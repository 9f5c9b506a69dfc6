"""Exceptions omzconv raises for problems a user can fix.

Every class here carries a one-line, user-facing message. The CLI turns them into
``Error: <message>`` and exit code 1 (2 for a UsageError); any other exception is a bug and keeps
its traceback.
"""


class OmzconvError(Exception):
    """Base class: a problem with the user's input, files or environment."""


class ConfigError(OmzconvError):
    """models.yaml (or another descriptor) is malformed."""


class UsageError(OmzconvError):
    """The command line asks for something that cannot be: no model named, an unknown precision,
    options that exclude each other. The CLI reports it like click's own usage errors (exit 2)."""


class UnknownModelError(UsageError):
    """A model or dataset name that the registry does not know."""


class DownloadError(OmzconvError):
    """Every URL failed, or what arrived did not verify."""


class IntegrityError(DownloadError):
    """A file's size or hash differs from the one declared."""


class PathError(OmzconvError):
    """A path omzconv would create, replace or delete lies outside its cache and output directories,
    or holds something omzconv did not make."""


class ArchiveError(OmzconvError):
    """An archive is corrupt or has members that would escape the target directory."""


class CheckpointError(OmzconvError):
    """A checkpoint is missing, unreadable, or does not match the network."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint whose names and shapes read fine but whose data does not (a corrupt body behind
    an intact index): it fits the network, it is the file that is damaged."""


class GraphError(OmzconvError):
    """A frozen graph is unreadable or lacks a requested node."""


class ConversionError(OmzconvError):
    """OpenVINO conversion failed or the converted model disagrees with the original."""


class DatasetError(OmzconvError):
    """A dataset directory is missing, of an unknown layout, or has bad entries."""


class ImageDecodeError(DatasetError):
    """An image file is missing, truncated or not an image Pillow can decode: "`name`: `reason`"."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.reason = reason
