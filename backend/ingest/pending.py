"""The bounded window between the MQTT receive loop and the writer.

Every message the broker delivers is held here from the moment it arrives until its batch is
committed and it is acknowledged (or, for a message of an earlier connection, until it is
written and dropped). The window is bounded in messages and in payload bytes. Policy when
full: the receive callback *waits* (which pauses paho's network loop, so the broker keeps the
rest and TCP flow control throttles it); nothing is dropped. ``blocked_seconds`` counts the
time spent waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class Inbound:
    """One MQTT message as received.

    Attributes:
        topic: the topic (invalid UTF-8 replaced).
        payload: the raw payload.
        mid: the broker's packet id, to acknowledge with.
        qos: 0, 1 or 2.
        dup: the broker delivered it before (a redelivery after a reconnect).
        retain: a retained message (sent on subscribe, old news for liveness).
        generation: the connection it arrived on (acks of older connections are not sent).
        received_at: server wall-clock time of arrival (``time.time()``).
        foreign: another worker's partition writes it (``subscription = partitioned``):
            kept in the window with an empty payload only to be acknowledged in order.
    """

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    dup: bool = False
    retain: bool = False
    generation: int = 0
    received_at: float = field(default_factory=time.time)
    foreign: bool = False


class PendingWindow:
    """Messages received and not yet released, bounded by count and by bytes.

    ``put`` blocks while the window is full; ``take`` hands messages to the writer;
    ``release`` (after commit, with or without an ack) frees their room.
    """

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._queue: deque[Inbound] = deque()
        self._cond = threading.Condition()
        self._held = 0
        self._held_bytes = 0
        self._closed = False
        self.blocked_seconds = 0.0
        self.peak_held = 0

    @property
    def held(self) -> int:
        """Messages in the window (queued or in the writer's hands)."""
        return self._held

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    @property
    def queued(self) -> int:
        """Messages waiting for the writer."""
        return len(self._queue)

    def put(self, message: Inbound) -> bool:
        """Add ``message``, waiting while the window is full; ``False`` once closed."""
        size = len(message.payload)
        with self._cond:
            if self._held >= self.max_messages or self._held_bytes >= self.max_bytes:
                started = time.monotonic()
                while not self._closed and (
                    self._held >= self.max_messages or self._held_bytes >= self.max_bytes
                ):
                    self._cond.wait(0.5)
                self.blocked_seconds += time.monotonic() - started
            if self._closed:
                return False
            self._queue.append(message)
            self._held += 1
            self._held_bytes += size
            self.peak_held = max(self.peak_held, self._held)
            self._cond.notify_all()
            return True

    def take(
        self, max_messages: int, timeout_s: float, max_bytes: int | None = None
    ) -> list[Inbound]:
        """Queued messages, waiting up to ``timeout_s`` for the first: at most
        ``max_messages``, and no more once ``max_bytes`` of payload are taken (at least one)."""
        with self._cond:
            if not self._queue and timeout_s > 0:
                self._cond.wait_for(lambda: bool(self._queue) or self._closed, timeout_s)
            taken: list[Inbound] = []
            size = 0
            queue = self._queue
            while queue and len(taken) < max_messages:
                if max_bytes is not None and taken and size >= max_bytes:
                    break
                message = queue.popleft()
                size += len(message.payload)
                taken.append(message)
            return taken

    def release(self, messages: list[Inbound]) -> None:
        """Free the room of ``messages`` (their batch is done)."""
        if not messages:
            return
        size = sum(len(m.payload) for m in messages)
        with self._cond:
            self._held -= len(messages)
            self._held_bytes -= size
            self._cond.notify_all()

    def drop_queued(self) -> int:
        """Forget queued messages (never acknowledged: the broker redelivers them)."""
        with self._cond:
            dropped = list(self._queue)
            self._queue.clear()
        self.release(dropped)
        return len(dropped)

    def close(self) -> None:
        """Wake every waiter; ``put`` refuses from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
