"""Typed configuration: environment (``FLEETCARE_*``) over an optional TOML file over defaults.

Every application defines one settings class deriving from :class:`FleetcareSettings`
and builds it once at start-up with :func:`load_settings`. Nothing is read at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleetcare.errors import ConfigError

ENV_PREFIX = "FLEETCARE_"
CONFIG_FILE_ENV = "FLEETCARE_CONFIG"

_config_file: ContextVar[Path | None] = ContextVar("fleetcare_config_file", default=None)

S = TypeVar("S", bound="FleetcareSettings")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/fleetcare``, or ``~/.local/share/fleetcare`` when XDG_DATA_HOME is unset.

    Where fleetcare keeps local state (embedded database, queues) by default.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fleetcare"


class _OwnKeysToml(TomlConfigSettingsSource):
    """The TOML file without the ``[tables]`` of other applications.

    One file configures every application: top-level keys are the backend's, and a table
    such as ``[ingest]`` belongs to the application of that name. A settings class sees the
    top-level keys and only those tables that are fields of its own.
    """

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        fields = self.settings_cls.model_fields
        return {
            key: value
            for key, value in data.items()
            if not isinstance(value, dict) or key in fields
        }


def _env_prefix(settings_cls: type[BaseSettings]) -> str:
    return str(settings_cls.model_config.get("env_prefix") or ENV_PREFIX)


class FleetcareSettings(BaseSettings):
    """Base for application settings: env prefix ``FLEETCARE_``, optional TOML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(_OwnKeysToml(settings_cls, toml_file=config_file))
        return tuple(sources)


class _TomlTable(InitSettingsSource):
    """One ``[table]`` of the fleetcare TOML file (an absent table gives nothing)."""

    def __init__(
        self, settings_cls: type[BaseSettings], source: TomlConfigSettingsSource, table: str
    ) -> None:
        data: dict[str, Any] = {}
        path = source.toml_file_path
        if isinstance(path, (str, Path)):
            try:
                with Path(path).open("rb") as handle:
                    found = tomllib.load(handle).get(table, {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ValueError(f"cannot read the [{table}] table: {exc}") from None
            if isinstance(found, dict):
                data = found
        super().__init__(settings_cls, data)


class TableSettings(FleetcareSettings):
    """Settings of one application: ``FLEETCARE_<APP>_*`` and the ``[<app>]`` TOML table.

    Subclasses set ``toml_table`` and their own ``env_prefix``.
    """

    toml_table: ClassVar[str]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        return tuple(
            _TomlTable(settings_cls, source, cls.toml_table)
            if isinstance(source, TomlConfigSettingsSource)
            else source
            for source in sources
        )


@contextmanager
def _using_config_file(path: Path | None) -> Iterator[None]:
    token = _config_file.set(path)
    try:
        yield
    finally:
        _config_file.reset(token)


def _problem_key(settings_cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    if not loc:
        return _env_prefix(settings_cls).rstrip("_")
    head = str(loc[0])
    field = settings_cls.model_fields.get(head)
    alias = field.alias if field is not None and field.alias else None
    return alias or (_env_prefix(settings_cls) + "__".join(str(part) for part in loc)).upper()


def _expected_form(settings_cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    if not loc:
        return ""
    field = settings_cls.model_fields.get(str(loc[0]))
    if field is None or not field.description:
        return ""
    return f" (expected: {field.description})"


def load_settings(
    settings_cls: type[S],
    config_file: Path | str | None = None,
    **overrides: Any,
) -> S:
    """Build and validate ``settings_cls`` once.

    Precedence: ``overrides`` > environment > TOML file > defaults. The TOML file is
    ``config_file`` or, when that is ``None``, the path in ``FLEETCARE_CONFIG``.

    Raises:
        ConfigError: naming each bad key and the form it expects.
    """
    path_text = config_file if config_file is not None else os.environ.get(CONFIG_FILE_ENV)
    path = Path(path_text).expanduser() if path_text else None
    if path is not None and not path.is_file():
        raise ConfigError([(CONFIG_FILE_ENV, f"configuration file {path} does not exist")])
    try:
        with _using_config_file(path):
            return settings_cls(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            key = _problem_key(settings_cls, loc)
            if error["type"] == "extra_forbidden":
                message = "unknown setting" + (f" in {path}" if path else "")
            else:
                got = error.get("input")
                got_text = f", got {got!r}" if got is not None and not isinstance(got, dict) else ""
                message = f"{error['msg']}{got_text}{_expected_form(settings_cls, loc)}"
            problems.append((key, message))
        raise ConfigError(problems) from None
    except ValueError as exc:  # malformed TOML
        raise ConfigError([(CONFIG_FILE_ENV, f"cannot parse {path}: {exc}")]) from None
