"""The root of the models package's exception tree."""

from __future__ import annotations


class ModelsError(Exception):
    """Base class of every error raised by ``models``."""


class DataSetError(ModelsError):
    """A data set is missing or malformed.

    Attributes:
        path: the file or directory that was read.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class RegistryError(ModelsError):
    """The model registry refused an operation (unknown version, bad transition)."""


class ManifestError(ModelsError):
    """A manifest does not match its model (wrong schema version, missing artifact, bad hash)."""


class ExportError(ModelsError):
    """Exporting a model to ONNX failed or the exported graph disagrees with the source model."""
