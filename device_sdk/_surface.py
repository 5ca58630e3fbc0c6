"""What ``DeviceClient`` and ``AsyncDeviceClient`` share: configuration, health and the
down-link registrations, none of which blocks or awaits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from device_sdk._config import DeviceConfig
from device_sdk._core import Core
from device_sdk._downlink import CommandHandler, ConfigHandler
from device_sdk.wire.payloads import DesiredConfig, Health, ReportStatus

_H = TypeVar("_H", bound=CommandHandler)
_C = TypeVar("_C", bound=ConfigHandler)


class ClientSurface:
    """The non-blocking part of both clients' API, over one :class:`Core`.

    Handlers may be coroutine functions on :class:`AsyncDeviceClient`; they then run on the
    loop that started the client.
    """

    def __init__(self, config: DeviceConfig) -> None:
        self._core = Core(config)

    @property
    def config(self) -> DeviceConfig:
        return self._core.config

    def health(self) -> Health:
        """A snapshot of the SDK's own health (also published on ``state``)."""
        return self._core.health()

    def command(self, name: str) -> Callable[[_H], _H]:
        """Decorator registering a command handler; its return value is the reply's result.

        Example::

            @client.command("reboot")
            def reboot(cmd: Command) -> dict[str, object]:
                schedule_reboot(cmd.args.get("delay_s", 5))
                return {"scheduled": True}
        """

        def register(handler: _H) -> _H:
            self._core.add_command(name, handler)
            return handler

        return register

    def add_command_handler(self, name: str, handler: CommandHandler) -> None:
        self._core.add_command(name, handler)

    def remove_command_handler(self, name: str) -> None:
        self._core.downlink.remove_command(name)

    def on_config(self, handler: _C) -> _C:
        """Register the desired-config handler (usable as a decorator).

        It receives each new desired config and returns what it applied (``None``: all of
        it); the SDK reports that (retained) on ``config/reported``. Raising rejects it.
        """
        self._core.set_config_handler(handler)
        return handler

    @property
    def desired_config(self) -> DesiredConfig | None:
        """The latest desired config received (``None`` before the first)."""
        return self._core.desired_config

    def report_config(
        self,
        version: int,
        config: Mapping[str, Any] | None,
        *,
        status: ReportStatus | str = ReportStatus.APPLIED,
        error: str | None = None,
    ) -> None:
        """Report applied config yourself (when no ``on_config`` handler is used)."""
        self._core.report_config(version, config, status, error)
