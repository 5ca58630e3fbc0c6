"""The pure-Python ``amqtt`` broker, run as a child process: the fallback when mosquitto is absent.

``AmqttBroker`` has the same shape as :class:`fleetcare.embedded.mosquitto.MosquittoBroker`
(start, stop, kill, restart, url), so callers treat both alike. The child process is this
module itself (``python -m fleetcare.embedded.amqtt_broker --port N``): it binds loopback only,
allows anonymous clients and speaks MQTT 3.1.1 only.

Limits to know: amqtt keeps sessions and queued messages in memory (nothing survives a
restart) and its per-session queues are unbounded. It is meant for a demo on a bare machine,
not for volume or fault tests, which use mosquitto.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from fleetcare.embedded.ports import free_tcp_port
from fleetcare.embedded.process import ListeningProcess
from fleetcare.errors import EmbeddedServiceError


def amqtt_version() -> str | None:
    """Version of the installed amqtt package, or ``None`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("amqtt")
    except PackageNotFoundError:
        return None


def broker_config(host: str, port: int) -> dict[str, Any]:
    """The amqtt configuration: one TCP listener, anonymous access, no $SYS or packet logging."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class AmqttBroker(ListeningProcess):
    """One amqtt broker process listening on loopback.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. A restart keeps the port.
    """

    name = "amqtt"

    def __init__(self, workdir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(workdir, host, port or free_tcp_port(host), "amqtt.log")

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "fleetcare.embedded.amqtt_broker",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    def start(self, timeout_s: float = 15.0) -> None:
        """Start the child process and wait until it accepts connections.

        Raises:
            EmbeddedServiceError: amqtt is not installed, or it did not listen in time
                (the message holds its log).
        """
        if amqtt_version() is None:
            raise EmbeddedServiceError("amqtt is not installed (pip install amqtt)")
        super().start(timeout_s)


async def serve(host: str, port: int) -> None:
    """Run an amqtt broker on ``host:port`` until SIGTERM or SIGINT."""
    from amqtt.broker import Broker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    broker = Broker(broker_config(host, port))
    await broker.start()
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fleetcare.embedded.amqtt_broker",
        description="Run the embedded amqtt MQTT 3.1.1 broker on loopback until SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
