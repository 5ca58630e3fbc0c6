"""Down-link: command handlers with replies, and the device twin (desired / reported config).

Messages arrive on the I/O thread, are decoded there and handed to one worker thread
through a bounded queue, so a slow handler never stalls publishing. Handlers run one at a
time, in arrival order. A command that finds the queue full is answered ``busy``.
Handlers may be plain functions or coroutine functions (run on the event loop of an
``AsyncDeviceClient``, or with ``asyncio.run`` otherwise).

QoS 1 may deliver a command twice, and a backend that crashed between sending it and
recording that it did sends it again. A command id that is waiting or running is not
queued again, and one of the last :data:`REMEMBERED_COMMANDS` that ran is answered with
its first reply without running the handler twice. A ``busy`` or ``invalid`` reply is not
remembered: the command did not run, so the same id may come again and run.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson

from device_sdk._clock import now_ms
from device_sdk._connection import Outgoing
from device_sdk._errors import PayloadError
from device_sdk.wire.codec import decode_model, encode_model
from device_sdk.wire.payloads import (
    MAX_TEXT,
    SCHEMA_VERSION,
    CommandReply,
    CommandRequest,
    DesiredConfig,
    ReplyStatus,
    ReportedConfig,
    ReportStatus,
)
from device_sdk.wire.topics import Channel

if TYPE_CHECKING:
    import asyncio

_log = logging.getLogger("device_sdk")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: How many answered command ids a client remembers to recognise a repeat.
REMEMBERED_COMMANDS = 256

JsonMapping: TypeAlias = Mapping[str, Any]
CommandHandler: TypeAlias = Callable[
    [CommandRequest], JsonMapping | Awaitable[JsonMapping | None] | None
]
"""Receives the command; returns the reply's ``result`` (or ``None``), or raises to fail it."""
ConfigHandler: TypeAlias = Callable[
    [DesiredConfig], JsonMapping | Awaitable[JsonMapping | None] | None
]
"""Receives the desired config; returns what it applied (``None``: all of it), or raises."""


@dataclass(frozen=True, slots=True)
class _CommandJob:
    request: CommandRequest


@dataclass(frozen=True, slots=True)
class _ConfigJob:
    desired: DesiredConfig


class Downlink:
    """Handler registry and the worker thread that runs handlers."""

    def __init__(self, device_id: str, queue_size: int) -> None:
        self._device_id = device_id
        self._queue_size = queue_size
        self._commands: dict[str, CommandHandler] = {}
        self._config_handler: ConfigHandler | None = None
        self._desired: DesiredConfig | None = None
        self._applied_version: int | None = None
        self._send: Callable[[Outgoing], None] | None = None
        self._jobs: queue.Queue[_CommandJob | _ConfigJob | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending_ids: set[str] = set()
        self._answered: OrderedDict[str, Outgoing] = OrderedDict()
        self.busy_replies = 0
        self.invalid_messages = 0
        self.repeated_commands = 0

    # ------------------------------------------------------------------ registry

    def add_command(self, name: str, handler: CommandHandler) -> None:
        with self._lock:
            self._commands[name] = handler

    def remove_command(self, name: str) -> None:
        with self._lock:
            self._commands.pop(name, None)

    def set_config_handler(self, handler: ConfigHandler | None) -> None:
        with self._lock:
            self._config_handler = handler
            pending = self._desired
            if handler is None or pending is None or pending.version == self._applied_version:
                return
        self._enqueue(_ConfigJob(pending))

    @property
    def desired(self) -> DesiredConfig | None:
        return self._desired

    # ------------------------------------------------------------------ lifecycle

    def start(self, send: Callable[[Outgoing], None]) -> None:
        self._send = send
        self._applied_version = None
        self._pending_ids = set()
        self._jobs = queue.Queue(self._queue_size)
        self._thread = threading.Thread(
            target=self._work, name=f"device-sdk-handlers-{self._device_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        thread = self._thread
        if thread is None:
            return
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            _log.warning("device_sdk: command queue still full at stop")
        thread.join(timeout)
        self._thread = None
        self._send = None

    # ------------------------------------------------------------------ I/O thread side

    def on_message(self, channel: Channel, payload: bytes) -> None:
        """Decode a down-link message and queue its job; never blocks."""
        if channel is Channel.COMMANDS:
            self._on_command(payload)
        elif channel is Channel.CONFIG_DESIRED and payload:
            try:
                desired = decode_model(payload, DesiredConfig)
            except PayloadError as exc:
                self.invalid_messages += 1
                _log.warning("device_sdk: ignoring invalid desired config: %s", exc.reason)
                return
            with self._lock:
                self._desired = desired
                if self._config_handler is None or desired.version == self._applied_version:
                    return
            self._enqueue(_ConfigJob(desired))

    def _on_command(self, payload: bytes) -> None:
        try:
            request = decode_model(payload, CommandRequest)
        except PayloadError as exc:
            self.invalid_messages += 1
            command_id = _raw_id(payload)
            _log.warning("device_sdk: invalid command %s: %s", command_id, exc.reason)
            if command_id is not None:
                self._reply(command_id, ReplyStatus.INVALID, error=exc.reason)
            return
        with self._lock:
            answer = self._answered.get(request.id)
            repeat = answer is not None or request.id in self._pending_ids
            if repeat:
                self.repeated_commands += 1
            else:
                self._pending_ids.add(request.id)
        if repeat:
            _log.info("device_sdk: command %s received again; not run twice", request.id)
            if answer is not None:
                self._emit(answer)
            return
        if not self._enqueue(_CommandJob(request)):
            with self._lock:
                self._pending_ids.discard(request.id)
            self.busy_replies += 1
            self._reply(request.id, ReplyStatus.BUSY, error="command queue full")

    def _enqueue(self, job: _CommandJob | _ConfigJob) -> bool:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            if isinstance(job, _ConfigJob):
                _log.warning(
                    "device_sdk: command queue full; config %d not applied yet", job.desired.version
                )
            return False
        return True

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                if isinstance(job, _CommandJob):
                    self._run_command(job.request)
                else:
                    self._apply_config(job.desired)
            except Exception:  # top level of the worker: keep serving
                _log.exception("device_sdk: down-link job failed")

    def _call(self, handler: Callable[[Any], Any], argument: Any) -> Any:
        result = handler(argument)
        if hasattr(result, "__await__"):  # a coroutine handler
            import asyncio  # only programs with async handlers pay for asyncio

            loop = self.loop
            if loop is not None and loop.is_running():
                return asyncio.run_coroutine_threadsafe(_await(result), loop).result()
            return asyncio.run(_await(result))
        return result

    def _run_command(self, request: CommandRequest) -> None:
        with self._lock:
            handler = self._commands.get(request.name)
        if handler is None:
            reply = self._reply(
                request.id, ReplyStatus.UNKNOWN, error=f"no handler for {request.name!r}"
            )
        else:
            try:
                result = self._call(handler, request)
                body = _json_object(result, "the command handler's result")
            except Exception as exc:  # the handler's failure becomes the reply
                _log.warning(
                    "device_sdk: command %s (%s) failed: %s", request.name, request.id, exc
                )
                reply = self._reply(request.id, ReplyStatus.ERROR, error=_describe(exc))
            else:
                reply = self._reply(request.id, ReplyStatus.OK, result=body)
        with self._lock:
            self._pending_ids.discard(request.id)
            self._answered[request.id] = reply
            while len(self._answered) > REMEMBERED_COMMANDS:
                self._answered.popitem(last=False)

    def _apply_config(self, desired: DesiredConfig) -> None:
        with self._lock:
            handler = self._config_handler
            if handler is None or desired is not self._desired:
                return  # a newer desired config arrived; apply that one instead
        try:
            applied = self._call(handler, desired)
            config = (
                dict(desired.config)
                if applied is None
                else _json_object(applied, "the config handler's result")
            )
        except Exception as exc:  # the handler's refusal becomes the report
            _log.warning("device_sdk: desired config %d rejected: %s", desired.version, exc)
            self.report(desired.version, None, ReportStatus.REJECTED, _describe(exc))
        else:
            self.report(desired.version, config, ReportStatus.APPLIED, None)
        with self._lock:
            self._applied_version = desired.version

    # ------------------------------------------------------------------ replies

    def _reply(
        self,
        command_id: str,
        status: ReplyStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Outgoing:
        reply = CommandReply(
            v=SCHEMA_VERSION,
            device=self._device_id,
            id=command_id,
            status=status,
            result=result,
            error=error,
            t=now_ms(),
        )
        message = Outgoing(Channel.COMMAND_REPLY, encode_model(reply), retain=False)
        self._emit(message)
        return message

    def report(
        self,
        version: int,
        config: dict[str, Any] | None,
        status: ReportStatus,
        error: str | None,
    ) -> None:
        """Publish (retained) what was applied for desired config ``version``."""
        reported = ReportedConfig(
            v=SCHEMA_VERSION,
            device=self._device_id,
            version=version,
            status=status,
            config=config,
            error=error,
            t=now_ms(),
        )
        self._emit(Outgoing(Channel.CONFIG_REPORTED, encode_model(reported), retain=True))

    def _emit(self, message: Outgoing) -> None:
        send = self._send
        if send is None:
            _log.warning("device_sdk: client stopped; %s message not sent", message.channel)
            return
        send(message)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_TEXT]


def _json_object(value: object, what: str) -> dict[str, Any]:
    """``value`` as a JSON object (round-tripped through orjson so it is JSON-clean)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping or None, got {type(value).__name__}")
    try:
        clean: dict[str, Any] = orjson.loads(orjson.dumps(dict(value)))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from None
    return clean


def _raw_id(payload: bytes) -> str | None:
    """The ``id`` of an invalid command, when one can be read (to answer ``invalid``)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    command_id = doc.get("id") if isinstance(doc, dict) else None
    if isinstance(command_id, str) and _MESSAGE_ID.fullmatch(command_id):
        return command_id
    return None
