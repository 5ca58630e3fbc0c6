from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.datasets.hashing import file_sha256
from models.errors import ManifestError, RegistryError
from models.manifest import Manifest, TensorSpec, read_manifest
from models.registry import FileRegistry


def make_version(folder: Path, name: str = "pump-rul", version: str = "v1") -> Path:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"not really onnx " + version.encode())
    Manifest(
        name=name,
        version=version,
        kind="anomaly_pca",
        feature_names=("s1", "s2"),
        inputs=(TensorSpec(name="features", shape=("batch", 2)),),
        outputs=(TensorSpec(name="anomaly_score", shape=("batch",)),),
        training_data="synthetic",
        training_data_sha256="a" * 64,
        metrics={"auc": 0.9},
        artifact_sha256=file_sha256(folder / "model.onnx"),
        opset=17,
    ).write(folder)
    return folder


def test_register_promote_retire_keeps_one_champion(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "reg")
    for version in ("v1", "v2"):
        entry = registry.register(make_version(tmp_path / version, version=version))
        assert entry.status == "candidate"
    assert registry.next_version("pump-rul") == "v3"
    registry.promote("pump-rul", "v1")
    assert registry.champion("pump-rul").version == "v1"  # type: ignore[union-attr]
    registry.promote("pump-rul", "v2")
    statuses = {e.version: e.status for e in registry.list("pump-rul")}
    assert statuses == {"v1": "retired", "v2": "champion"}
    assert registry.get("pump-rul", "v1").retired_at is not None
    registry.retire("pump-rul", "v2")
    assert registry.champion("pump-rul") is None
    assert registry.names() == ["pump-rul"]
    assert registry.get("pump-rul", "v2").metrics == {"auc": 0.9}


def test_a_tampered_artifact_is_refused(tmp_path: Path) -> None:
    source = make_version(tmp_path / "v1")
    (source / "model.onnx").write_bytes(b"something else")
    with pytest.raises(RegistryError, match="SHA-256"):
        FileRegistry(tmp_path / "reg").register(source)


def test_a_version_registers_once_and_unknown_versions_are_errors(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "reg")
    registry.register(make_version(tmp_path / "a"))
    with pytest.raises(RegistryError, match="already registered"):
        registry.register(make_version(tmp_path / "b"))
    with pytest.raises(RegistryError, match="no version"):
        registry.promote("pump-rul", "v9")
    with pytest.raises(RegistryError, match="invalid model name"):
        registry.register(make_version(tmp_path / "c", name="../escape"))


def test_manifest_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    folder = make_version(tmp_path / "v1")
    raw = json.loads((folder / "manifest.json").read_text())
    raw["schema_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="schema version 99"):
        read_manifest(folder)


def test_the_default_version_is_the_champion_else_the_newest(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "reg")
    for version in ("v1", "v2"):
        registry.register(make_version(tmp_path / version, version=version))
    assert registry.default("pump-rul").version == "v2"
    registry.promote("pump-rul", "v1")
    assert registry.default("pump-rul").version == "v1"


def test_unknown_and_hostile_names_are_clear_errors_that_create_nothing(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "reg")
    with pytest.raises(RegistryError, match="nothing is registered there"):
        registry.default("pump-rul")
    registry.register(make_version(tmp_path / "v1"))
    for call in (
        lambda: registry.default("nosuch"),
        lambda: registry.get("nosuch", "v1"),
        lambda: registry.promote("nosuch", "v1"),
        lambda: registry.retire("nosuch", "v1"),
    ):
        with pytest.raises(RegistryError, match=r"no model 'nosuch' .*; registered: pump-rul"):
            call()
    with pytest.raises(RegistryError, match=r"no version 'v9' .*\(it has v1\)"):
        registry.get("pump-rul", "v9")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "status.json").write_text("{}")
    for name in ("../secret", "/etc", "Pump-RUL"):
        with pytest.raises(RegistryError, match="invalid model name"):
            registry.default(name)
    assert sorted(p.name for p in (tmp_path / "reg").iterdir()) == ["pump-rul"]
    assert registry.names() == ["pump-rul"]
