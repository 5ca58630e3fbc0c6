"""A filesystem model registry: versions with manifest, artifact, metrics and status.

Layout under the registry directory (``FLEETCARE_MODEL_DIR`` or ``<data_dir>/models``)::

    <name>/<version>/manifest.json
    <name>/<version>/model.onnx
    <name>/status.json        # version -> status and its timestamps

Status moves ``candidate -> champion -> retired``; promoting a version retires the
previous champion, so a name has at most one champion. Writes are atomic (temporary file
and rename) and serialised per name by an exclusive ``flock`` on ``<name>/.lock``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from models.datasets.hashing import file_sha256
from models.errors import RegistryError
from models.manifest import Manifest, read_manifest

Status = Literal["candidate", "champion", "retired"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class StatusRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Status = "candidate"
    created_at: datetime
    promoted_at: datetime | None = None
    retired_at: datetime | None = None


class ModelEntry(BaseModel):
    """One registered version, as listed."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    kind: str
    status: Status
    created_at: datetime
    promoted_at: datetime | None
    retired_at: datetime | None
    metrics: dict[str, float]
    directory: Path

    @property
    def artifact(self) -> Path:
        return self.directory / "model.onnx"


def _atomic_write(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _checked(name: str) -> str:
    """``name``, if it is a model name (it becomes a folder under the registry)."""
    if not _NAME.match(name):
        raise RegistryError(f"invalid model name {name!r}")
    return name


class FileRegistry:
    """The registry rooted at ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- reading -------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if _NAME.match(p.name) and (p / "status.json").is_file()
        )

    def _statuses(self, name: str) -> dict[str, StatusRecord]:
        path = self.root / _checked(name) / "status.json"
        if not path.is_file():
            return {}
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {version: StatusRecord.model_validate(record) for version, record in raw.items()}

    def _entry(self, name: str, version: str, record: StatusRecord) -> ModelEntry:
        directory = self.root / name / version
        manifest = read_manifest(directory)
        return ModelEntry(
            name=name,
            version=version,
            kind=manifest.kind,
            status=record.status,
            created_at=record.created_at,
            promoted_at=record.promoted_at,
            retired_at=record.retired_at,
            metrics=manifest.metrics,
            directory=directory,
        )

    def list(self, name: str | None = None) -> list[ModelEntry]:
        """Every version (of ``name``, or of every model), oldest first."""
        out = []
        for model in [name] if name is not None else self.names():
            for version, record in self._statuses(model).items():
                out.append(self._entry(model, version, record))
        return sorted(out, key=lambda e: (e.name, e.created_at, e.version))

    def get(self, name: str, version: str) -> ModelEntry:
        statuses = self._statuses(name)
        if not statuses:
            raise RegistryError(self._unknown(name))
        record = statuses.get(version)
        if record is None:
            raise RegistryError(
                f"no version {version!r} of model {name!r} in {self.root} "
                f"(it has {', '.join(statuses)})"
            )
        return self._entry(name, version, record)

    def champion(self, name: str) -> ModelEntry | None:
        return next((e for e in self.list(name) if e.status == "champion"), None)

    def default(self, name: str) -> ModelEntry:
        """The champion of ``name``, else its newest version.

        Raises:
            RegistryError: no version of ``name`` is registered.
        """
        entries = self.list(name)
        if not entries:
            raise RegistryError(self._unknown(name))
        return next((e for e in entries if e.status == "champion"), entries[-1])

    def _unknown(self, name: str) -> str:
        names = self.names()
        known = f"registered: {', '.join(names)}" if names else "nothing is registered there"
        return f"no model {name!r} in {self.root}; {known}"

    def manifest(self, name: str, version: str) -> Manifest:
        return read_manifest(self.get(name, version).directory)

    def next_version(self, name: str) -> str:
        """``v1``, ``v2``, ... (one more than the highest registered or on disk)."""
        taken = set(self._statuses(name))
        if (self.root / name).is_dir():
            taken |= {p.name for p in (self.root / name).iterdir() if p.is_dir()}
        numbers = [int(v[1:]) for v in taken if re.fullmatch(r"v\d+", v)]
        return f"v{max(numbers, default=0) + 1}"

    # -- writing -------------------------------------------------------------------------
    @contextmanager
    def _locked(self, name: str) -> Iterator[dict[str, StatusRecord]]:
        folder = self.root / _checked(name)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            statuses = self._statuses(name)
            yield statuses
            _atomic_write(
                folder / "status.json",
                json.dumps({v: r.model_dump(mode="json") for v, r in statuses.items()}, indent=2),
            )

    def register(self, source: Path) -> ModelEntry:
        """Copy a directory holding ``manifest.json`` and its artifact in as a candidate.

        Raises:
            ManifestError: the manifest is invalid.
            RegistryError: the artifact is missing or its SHA-256 differs from the
                manifest's, or the version is already registered.
        """
        manifest = read_manifest(source)
        artifact = source / manifest.artifact
        if not artifact.is_file():
            raise RegistryError(f"{artifact}: artifact missing")
        if file_sha256(artifact) != manifest.artifact_sha256:
            raise RegistryError(f"{artifact}: SHA-256 differs from the manifest's")
        with self._locked(manifest.name) as statuses:
            if manifest.version in statuses:
                raise RegistryError(f"{manifest.name} {manifest.version} is already registered")
            target = self.root / manifest.name / manifest.version
            if target.resolve() != source.resolve():
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(source, target)
            statuses[manifest.version] = StatusRecord(created_at=manifest.created_at)
        return self.get(manifest.name, manifest.version)

    def promote(self, name: str, version: str) -> ModelEntry:
        """Make ``version`` the champion; the previous champion is retired."""
        now = datetime.now(UTC)
        self.get(name, version)  # a clear error, before any folder is made for a wrong name
        with self._locked(name) as statuses:
            record = statuses.get(version)
            if record is None:
                raise RegistryError(f"no version {version!r} of model {name!r}")
            for other, previous in list(statuses.items()):
                if other != version and previous.status == "champion":
                    statuses[other] = previous.model_copy(
                        update={"status": "retired", "retired_at": now}
                    )
            statuses[version] = record.model_copy(
                update={"status": "champion", "promoted_at": now, "retired_at": None}
            )
        return self.get(name, version)

    def retire(self, name: str, version: str) -> ModelEntry:
        self.get(name, version)  # a clear error, before any folder is made for a wrong name
        with self._locked(name) as statuses:
            record = statuses.get(version)
            if record is None:
                raise RegistryError(f"no version {version!r} of model {name!r}")
            statuses[version] = record.model_copy(
                update={"status": "retired", "retired_at": datetime.now(UTC)}
            )
        return self.get(name, version)
