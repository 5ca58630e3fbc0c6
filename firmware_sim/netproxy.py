"""A TCP proxy in front of the broker whose paths can be cut, for network-outage faults.

Each *path* (one per device that may lose its network) listens on its own loopback port
and forwards to the broker. Cutting a path closes its open connections and refuses new
ones until it is restored; cuts nest (a device outage inside a site outage).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import Counter

from firmware_sim.errors import SimError


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.ports: dict[str, int] = {}
        self._paths: list[str] = []
        self._cut: Counter[str] = Counter()
        self._conns: dict[str, set[asyncio.StreamWriter]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def add_path(self, name: str) -> None:
        if self._thread is not None:
            raise SimError("add paths before starting the proxy")
        self._paths.append(name)
        self._conns[name] = set()

    def url(self, name: str) -> str:
        return f"mqtt://127.0.0.1:{self.ports[name]}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sim-fault-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise SimError(f"fault proxy failed to start: {self._error}")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._listen())
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        for server in self._servers:
            server.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    async def _listen(self) -> None:
        for name in self._paths:
            server = await asyncio.start_server(
                functools.partial(self._handle, name), "127.0.0.1", 0
            )
            self.ports[name] = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    async def _handle(
        self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._cut[name] > 0:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        conns = self._conns[name]
        conns.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        conns.discard(writer)
        conns.discard(up_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65_536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    def cut(self, name: str) -> None:
        """Drop and refuse ``name``'s connections (nested: needs as many restores)."""
        self._cut[name] += 1
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._abort, name)

    def _abort(self, name: str) -> None:
        for writer in list(self._conns[name]):
            writer.transport.abort()

    def restore(self, name: str) -> None:
        if self._cut[name] > 0:
            self._cut[name] -= 1

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            for name in self._paths:
                self._loop.call_soon_threadsafe(self._abort, name)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
