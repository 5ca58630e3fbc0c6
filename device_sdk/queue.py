"""A bounded, durable FIFO on disk: an append-only segment log with acknowledgements.

Used by the device SDK for its readings and by the gateway for store-and-forward (one
implementation, imported, not copied).

Layout of a queue directory::

    00000000000000000001.seg   segments, named after the first index they hold
    00000000000000052133.seg   the newest is the one being appended to
    queue.json                 acknowledged-below mark, dropped count (checkpointed)
    reserved.json              highest index handed out may reach (fsynced, see below)
    lock                       flock: one DurableQueue per directory

Guarantees:

* **Indexes** are assigned in append order, start at 1, survive restarts and are never
  reused: after a process crash they continue right after the last appended entry; after
  an operating-system crash or power loss they continue after a reservation kept in
  ``reserved.json`` (fsynced every ``reserve_block`` indexes), which may leave a gap.
* **Durability** of :meth:`append`: the entry is written to the segment file with one
  ``write(2)`` before it returns, so it survives the process crashing or being killed
  (SIGKILL, OOM killer). It survives power loss once :meth:`sync` ran (``fdatasync``);
  the owner decides how often (the SDK: every ``fsync_interval``, or before returning in
  ``durability="fsync"`` mode, where concurrent callers share one ``fdatasync``).
* **Bound**: at most ``max_bytes`` on disk. When an append would pass it, whole segments are
  dropped oldest first (each about ``segment_bytes``), counted in :attr:`QueueStats.dropped`
  (persisted) and summed up, until :meth:`take_drops` takes it, in one pending
  :class:`DropReport` (also persisted). Appending never blocks on the consumer.
* **Delivery**: :meth:`read` hands out entries in index order; an entry leaves the queue
  only when :meth:`ack` is called for it. :meth:`rewind` starts reading again at the first
  unacknowledged entry (after a reconnect). Acknowledgements are persisted by
  :meth:`checkpoint`, so after a crash the entries acknowledged since the last checkpoint
  are read again: consumers must tolerate duplicates (fleetcare deduplicates on
  (device, seq)).
* **Integrity**: each frame carries a CRC32. On open, a segment is read up to its first
  torn or corrupt frame (a write cut by power loss); what follows is logged and ignored.

The owner runs the periodic chores from a background thread: :meth:`sync` (its fsync
policy), :meth:`checkpoint` (the SDK: every 100 ms) and :meth:`reserve_ahead` (cheap; keeps
the reservation's fsync out of :meth:`append`).

All methods are thread-safe. ``append`` holds the lock while it frames the entry and
writes it (one ``write(2)``); it waits for the disk only in the rare case that
:meth:`reserve_ahead` fell behind.

The file format is in ``device_sdk/_segments.py``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import orjson

from device_sdk._clock import now_ms, system_boot_id
from device_sdk._errors import QueueClosedError, QueueError
from device_sdk._segments import (
    FRAME,
    FRAME_OVERHEAD,
    MAX_ENTRY,
    Segment,
    atomic_write,
    create_segment,
    encode_frame,
    fsync_dir,
    json_int,
    read_json,
    scan_segment,
    take_lock,
    write_all,
)

__all__ = ["DropReport", "DurableQueue", "QueueItem", "QueueStats"]

_log = logging.getLogger("device_sdk.queue")


@dataclass(slots=True)
class QueueItem:
    """One entry handed out by :meth:`DurableQueue.read` (treat as read-only).

    Not frozen: a frozen dataclass costs twice as much to build, on the hot path.
    """

    index: int
    tag: int
    time_ms: int
    """Wall-clock time at which it was appended (ms since the epoch)."""
    label: str
    """The label of the queue session that appended it (the SDK: the boot id)."""
    data: bytes


@dataclass(frozen=True, slots=True)
class DropReport:
    """``count`` unacknowledged entries between two indexes were dropped by the bound."""

    count: int
    first_index: int
    last_index: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    items: int
    """Entries not yet acknowledged (or dropped)."""
    bytes: int
    """Bytes on disk in segment files (acknowledged entries stay until their segment goes)."""
    max_bytes: int
    dropped: int
    """Entries dropped since the queue was created (persisted across restarts)."""
    next_index: int
    acked_below: int
    """Every index below this is acknowledged or dropped."""
    segments: int

    @property
    def fill(self) -> float:
        return self.bytes / self.max_bytes


class DurableQueue:
    """A bounded on-disk FIFO; see the module docstring for the guarantees.

    Args:
        directory: where the segments live (created if missing).
        max_bytes: bound on the bytes on disk.
        segment_bytes: size at which a segment is closed and a new one started; the drop
            granularity. Defaults to ``max_bytes // 16`` (clamped to 64 KiB .. 8 MiB).
        label: stored with every segment this session writes, returned with each item.
        reserve_block: how many indexes one fsynced reservation covers.

    Raises:
        QueueLockedError: another ``DurableQueue`` has the directory open.
        QueueError: the directory cannot be used.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        segment_bytes: int | None = None,
        label: str = "",
        reserve_block: int = 65_536,
    ) -> None:
        if segment_bytes is None:
            segment_bytes = min(8 * 1024 * 1024, max(64 * 1024, max_bytes // 16))
        if max_bytes < 4 * segment_bytes:
            raise QueueError(
                f"max_bytes ({max_bytes}) must be at least 4 x segment_bytes ({segment_bytes})"
            )
        if reserve_block < 1:
            raise QueueError("reserve_block must be positive")
        label_bytes = label.encode()
        if len(label_bytes) > 255:
            raise QueueError("label is longer than 255 bytes")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.label = label
        self._reserve_block = reserve_block
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._reserve_lock = threading.Lock()
        self._closed = False
        self._segments: list[Segment] = []
        self._bytes = 0
        self._next = 1
        self._reserved = 1
        self._acked_below = 1
        self._acked: set[int] = set()
        self._dropped = 0
        self._unreported: DropReport | None = None
        self._last_drop_log = -1e9
        self._pending: dict[int, tuple[Segment, int, int]] = {}
        self._cursor_seg: Segment | None = None
        self._cursor_off = 0
        self._read_next = 1
        self._synced_next = 1
        self._unsynced: list[Segment] = []
        self._dir_dirty = False
        self._checkpointed: tuple[int, int, int] = (0, 0, 0)
        self._lock_fd = -1
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = take_lock(self.directory)
            self._open()
        except OSError as exc:
            self._release_lock()
            raise QueueError(f"cannot open queue at {self.directory}: {exc}") from exc
        except QueueError:
            self._release_lock()
            raise

    # ------------------------------------------------------------------ opening

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = -1

    def _open(self) -> None:
        meta = read_json(self.directory / "queue.json")
        reserved_doc = read_json(self.directory / "reserved.json")
        self._dropped = json_int(meta, "dropped", 0)
        pending = meta.get("unreported")
        if (
            isinstance(pending, list)
            and len(pending) == 3
            and all(isinstance(v, int) for v in pending)
        ):
            self._unreported = DropReport(pending[0], pending[1], pending[2])
        acked_below = json_int(meta, "acked_below", 1)
        paths = sorted(self.directory.glob("*.seg"))
        scanned: list[Segment] = []
        for path in paths:
            segment = scan_segment(path)
            if segment is not None:
                scanned.append(segment)
        scan_end = max((s.end for s in scanned), default=1)
        same_boot = system_boot_id() is not None and reserved_doc.get("boot") == system_boot_id()
        clean = meta.get("clean") is True
        next_index = max(scan_end, json_int(meta, "next", 1), acked_below, 1)
        if not (clean or same_boot):
            # The OS may have lost writes that were already handed out and sent.
            next_index = max(next_index, json_int(reserved_doc, "reserved", 1))
        self._next = next_index
        self._synced_next = next_index
        first_live = max(acked_below, min((s.first for s in scanned), default=next_index))
        self._acked_below = first_live
        for segment in scanned:
            if segment.end <= self._acked_below or segment.end == segment.first:
                os.close(segment.fd)
                segment.path.unlink(missing_ok=True)
            else:
                self._segments.append(segment)
                self._bytes += segment.size
        self._reserve(self._next + self._reserve_block)
        self._new_segment()
        self._cursor_seg = self._segments[0]
        self._cursor_off = self._segments[0].data_start
        self._read_next = self._acked_below
        self._write_meta(clean=False)

    # ------------------------------------------------------------------ writing

    def _reserve(self, upto: int) -> None:
        """Durably record that indexes below ``upto`` may be handed out.

        The fsyncs run without the append lock (lock order: ``_reserve_lock`` then ``_lock``),
        so appends continue while the background thread extends the reservation.
        """
        with self._reserve_lock:
            if self._reserved >= upto:
                return
            doc = {"reserved": upto, "boot": system_boot_id()}
            atomic_write(self.directory, "reserved.json", orjson.dumps(doc), fsync=True)
            with self._lock:
                self._reserved = max(self._reserved, upto)

    @property
    def reservation_low(self) -> bool:
        """Whether :meth:`reserve_ahead` has work to do (cheap, no lock)."""
        return self._reserved - self._next < self._reserve_block // 2

    def reserve_ahead(self) -> None:
        """Extend the index reservation before appends need it (cheap when not needed).

        The SDK's I/O thread calls this every loop turn, so ``append`` itself almost never
        waits for the reservation's ``fsync``.
        """
        if self.reservation_low and not self._closed:
            self._reserve(self._next + self._reserve_block)

    def _new_segment(self) -> None:
        segment = create_segment(self.directory, self._next, self.label)
        if self._segments:
            self._unsynced.append(self._segments[-1])
        self._segments.append(segment)
        self._bytes += segment.size
        self._dir_dirty = True

    def append(self, data: bytes, *, tag: int = 0, time_ms: int | None = None) -> int:
        """Append one entry and return its index. See the module docstring for durability."""
        return self.append_many((data,), tag=tag, time_ms=time_ms).start

    def append_many(
        self, items: Sequence[bytes], *, tag: int = 0, time_ms: int | None = None
    ) -> range:
        """Append entries and return their indexes (consecutive).

        Entries that fit in the current segment go out in one ``write(2)``; a larger call
        is split at segment boundaries. If the disk fails part-way (``QueueError``), the
        entries written before the failure stay queued.
        """
        if not 0 <= tag <= 255:
            raise QueueError("tag must be in 0..255")
        when = now_ms() if time_ms is None else time_ms
        count = len(items)
        while True:
            with self._lock:
                if self._closed:
                    raise QueueClosedError("queue is closed")
                first = self._next
                if count == 0:
                    return range(first, first)
                if first + count <= self._reserved:
                    return self._append_locked(items, first, when, tag)
            # Rare: the background reservation (reserve_ahead) fell behind.
            self._reserve(first + count + self._reserve_block)

    def _append_locked(self, items: Sequence[bytes], first: int, when: int, tag: int) -> range:
        count = len(items)
        frames: list[bytes] = []
        total = 0
        for offset, data in enumerate(items):
            if len(data) > MAX_ENTRY:
                raise QueueError(f"entry of {len(data)} bytes exceeds {MAX_ENTRY}")
            frame = encode_frame(first + offset, when, tag, data)
            frames.append(frame)
            total += len(frame)
        if total > self.max_bytes - 2 * self.segment_bytes:
            raise QueueError(f"append of {total} bytes is too large for this queue")
        if len(frames) == 1 or total <= self.segment_bytes:
            self._write_chunk(b"".join(frames), first + count)
        else:
            chunk: list[bytes] = []
            size = 0
            room = self.segment_bytes - self._segments[-1].size
            for position, frame in enumerate(frames):
                if chunk and size + len(frame) > room:
                    self._write_chunk(b"".join(chunk), first + position)
                    chunk, size, room = [], 0, self.segment_bytes
                chunk.append(frame)
                size += len(frame)
            self._write_chunk(b"".join(chunk), first + count)
        return range(first, first + count)

    def _write_chunk(self, blob: bytes, end: int) -> None:
        """Write consecutive frames ending before index ``end`` (lock held)."""
        active = self._segments[-1]
        if active.size + len(blob) > self.segment_bytes and active.end > active.first:
            self._new_segment()
            active = self._segments[-1]
        while self._bytes + len(blob) > self.max_bytes and len(self._segments) > 1:
            self._drop_oldest()
        write_all(active, blob)
        active.size += len(blob)
        active.end = end
        self._bytes += len(blob)
        self._next = end

    def _drop_oldest(self) -> None:
        segment = self._segments.pop(0)
        low = max(segment.first, self._acked_below)
        acked_inside = sum(1 for i in self._acked if low <= i < segment.end)
        lost = max(0, segment.end - low - acked_inside)
        if lost:
            self._note_drop(lost, low, segment.end - 1)
        if segment.end > self._acked_below:
            self._acked_below = segment.end
            self._acked = {i for i in self._acked if i >= segment.end}
            self._pending = {i: p for i, p in self._pending.items() if i >= segment.end}
        if self._cursor_seg is segment:
            self._cursor_seg = self._segments[0]
            self._cursor_off = self._segments[0].data_start
        self._read_next = max(self._read_next, segment.end)
        self._bytes -= segment.size
        if segment in self._unsynced:
            self._unsynced.remove(segment)
        os.close(segment.fd)
        segment.path.unlink(missing_ok=True)
        self._dir_dirty = True
        if lost:
            self._write_meta(clean=False)

    def _note_drop(self, count: int, first: int, last: int) -> None:
        self._dropped += count
        old = self._unreported
        if old is not None:  # drops go oldest first: one report spans them all
            count, first = count + old.count, min(first, old.first_index)
        self._unreported = DropReport(count, first, last)
        now = time.monotonic()
        level = logging.WARNING if now - self._last_drop_log >= 60.0 else logging.DEBUG
        if level == logging.WARNING:
            self._last_drop_log = now
        _log.log(
            level,
            "queue bound reached: dropped %d entries (%d..%d), %d dropped in all",
            count,
            first,
            last,
            self._dropped,
        )

    @property
    def has_drops(self) -> bool:
        """Whether :meth:`take_drops` has something to return (cheap, no lock)."""
        return self._unreported is not None

    @property
    def unread(self) -> int:
        """About how many entries :meth:`read` has not handed out yet (cheap, no lock)."""
        return max(0, self._next - self._read_next)

    def take_drops(self) -> DropReport | None:
        """The drops since the last call, summed up in one report (``None`` if none).

        The pending report survives restarts; once taken it is the caller's to deliver.
        """
        with self._lock:
            report, self._unreported = self._unreported, None
            if report is not None and not self._closed:
                self._write_meta(clean=False)
            return report

    # ------------------------------------------------------------------ durability

    def sync(self, upto: int | None = None) -> None:
        """``fdatasync`` everything appended so far (or at least up to index ``upto``).

        Concurrent callers share one ``fdatasync`` (group commit).
        """
        with self._lock:
            target = self._next if upto is None else upto + 1
            if self._synced_next >= target or self._closed:
                return
        with self._sync_lock:
            with self._lock:
                if self._synced_next >= target or self._closed:
                    return
                covered = self._next
                fds = [os.dup(s.fd) for s in [*self._unsynced, self._segments[-1]]]
                self._unsynced.clear()
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            try:
                for fd in fds:
                    os.fdatasync(fd)
                if dir_dirty:
                    fsync_dir(self.directory)
            finally:
                for fd in fds:
                    os.close(fd)
            with self._lock:
                self._synced_next = max(self._synced_next, covered)

    @property
    def unsynced(self) -> bool:
        """Whether entries were appended since the last :meth:`sync`."""
        return self._synced_next < self._next

    # ------------------------------------------------------------------ reading

    def read(self, max_items: int = 500, max_bytes: int = 256 * 1024) -> list[QueueItem]:
        """Next unacknowledged entries in index order, after those already read.

        Returns at most ``max_items`` entries and stops before passing ``max_bytes`` of data
        (but always returns at least one entry when one is available).
        """
        items: list[QueueItem] = []
        append = items.append
        unpack = FRAME.unpack_from
        taken = 0
        full = False
        budget = max(64 * 1024, max_bytes + max_items * FRAME_OVERHEAD)
        read_next = 0
        with self._lock:
            if self._closed:
                raise QueueClosedError("queue is closed")
            low = self._acked_below
            acked = self._acked
            pending = self._pending
            segment = self._cursor_seg
            offset = self._cursor_off
            if segment is None or segment not in self._segments:
                segment, offset = self._segments[0], self._segments[0].data_start
            position = self._segments.index(segment)
            while not full:
                if offset >= segment.size:
                    if position + 1 >= len(self._segments):
                        break
                    position += 1
                    segment = self._segments[position]
                    offset = segment.data_start
                    continue
                want = min(segment.size - offset, budget)
                buf = os.pread(segment.fd, want, offset)
                end = len(buf)
                label = segment.label
                pos = 0
                while pos + FRAME_OVERHEAD <= end:
                    length, _crc, index, when, tag = unpack(buf, pos)
                    total = FRAME_OVERHEAD + length
                    if pos + total > end:
                        if pos == 0:  # one frame bigger than the read
                            buf = os.pread(segment.fd, total, offset)
                            end = len(buf)
                            continue
                        break
                    if index >= low and index not in acked:
                        if len(items) >= max_items or (items and taken + length > max_bytes):
                            full = True
                            break
                        append(
                            QueueItem(
                                index, tag, when, label, buf[pos + FRAME_OVERHEAD : pos + total]
                            )
                        )
                        pending[index] = (segment, offset + pos, when)
                        taken += length
                        read_next = index + 1
                    pos += total
                offset += pos
                if pos == 0:
                    break
            self._read_next = max(self._read_next, read_next)
            self._cursor_seg = segment
            self._cursor_off = offset
        return items

    def ack(self, indexes: Iterable[int]) -> int:
        """Mark entries as delivered; returns how many were newly acknowledged.

        Unknown, already acknowledged and dropped indexes are ignored.
        """
        newly = 0
        with self._lock:
            low = self._acked_below
            acked = self._acked
            pending = self._pending
            if (
                isinstance(indexes, range)
                and indexes.step == 1
                and indexes.start == low
                and not acked
            ):
                stop = min(indexes.stop, self._next)
                for i in indexes:
                    pending.pop(i, None)
                newly = max(0, stop - low)
                self._acked_below = max(low, stop)
                return newly
            for i in indexes:
                if i >= low and i < self._next and i not in acked:
                    acked.add(i)
                    pending.pop(i, None)
                    newly += 1
            while low in acked:
                acked.remove(low)
                low += 1
            self._acked_below = low
        return newly

    def rewind(self) -> None:
        """Read again from the first unacknowledged entry (e.g. after a reconnect)."""
        with self._lock:
            if self._pending:
                first = min(self._pending)
                segment, offset, _when = self._pending[first]
                if segment in self._segments:
                    self._cursor_seg, self._cursor_off = segment, offset
                else:
                    self._cursor_seg = self._segments[0]
                    self._cursor_off = self._segments[0].data_start
                self._read_next = first
            self._pending.clear()

    def oldest_unacked_ms(self) -> int | None:
        """Append time of the oldest unacknowledged entry (``None`` when there is none)."""
        with self._lock:
            if self._acked_below >= self._next:
                return None
            hit = self._pending.get(self._acked_below)
            if hit is not None:
                return hit[2]
            return self._peek_time()

    def _peek_time(self) -> int | None:
        """Time of the first live entry at or after the cursor (skips dead frames)."""
        segment = self._cursor_seg
        if segment is None or segment not in self._segments:
            segment = self._segments[0]
            self._cursor_seg, self._cursor_off = segment, segment.data_start
        position = self._segments.index(segment)
        offset = self._cursor_off
        pending_times = [p[2] for p in self._pending.values()]
        while True:
            if offset >= segment.size:
                if position + 1 >= len(self._segments):
                    return min(pending_times, default=None)
                position += 1
                segment = self._segments[position]
                offset = segment.data_start
                continue
            head = os.pread(segment.fd, FRAME_OVERHEAD, offset)
            if len(head) < FRAME_OVERHEAD:
                return min(pending_times, default=None)
            length, _crc, index, when, _tag = FRAME.unpack_from(head)
            if index >= self._acked_below and index not in self._acked:
                if not self._pending:  # nothing read is waiting: remember how far we skipped
                    self._cursor_seg, self._cursor_off = segment, offset
                oldest: int = min([when, *pending_times])
                return oldest
            offset += FRAME_OVERHEAD + length

    # ------------------------------------------------------------------ bookkeeping

    def stats(self) -> QueueStats:
        with self._lock:
            return QueueStats(
                items=self._next - self._acked_below - len(self._acked),
                bytes=self._bytes,
                max_bytes=self.max_bytes,
                dropped=self._dropped,
                next_index=self._next,
                acked_below=self._acked_below,
                segments=len(self._segments),
            )

    @property
    def next_index(self) -> int:
        return self._next

    @property
    def needs_checkpoint(self) -> bool:
        """Whether :meth:`checkpoint` would write anything (cheap, no lock)."""
        return (self._acked_below, self._dropped, self._next) != self._checkpointed

    def checkpoint(self) -> None:
        """Persist the acknowledged mark and delete fully acknowledged segments.

        Cheap when nothing changed; the SDK calls it every few hundred milliseconds.
        """
        with self._lock:
            if self._closed:
                return
            state = (self._acked_below, self._dropped, self._next)
            if state == self._checkpointed:
                return
            self._write_meta(clean=False)
            while len(self._segments) > 1 and self._segments[0].end <= self._acked_below:
                segment = self._segments.pop(0)
                if self._cursor_seg is segment:
                    self._cursor_seg = self._segments[0]
                    self._cursor_off = self._segments[0].data_start
                if segment in self._unsynced:
                    self._unsynced.remove(segment)
                self._bytes -= segment.size
                os.close(segment.fd)
                segment.path.unlink(missing_ok=True)
                self._dir_dirty = True

    def _write_meta(self, *, clean: bool) -> None:
        doc = {
            "format": 1,
            "acked_below": self._acked_below,
            "dropped": self._dropped,
            "next": self._next,
            "clean": clean,
            "unreported": (
                [self._unreported.count, self._unreported.first_index, self._unreported.last_index]
                if self._unreported is not None
                else None
            ),
        }
        atomic_write(self.directory, "queue.json", orjson.dumps(doc), fsync=clean)
        self._checkpointed = (self._acked_below, self._dropped, self._next)

    def close(self) -> None:
        """Sync, checkpoint (marking a clean shutdown) and release the directory."""
        with self._sync_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for segment in [*self._unsynced, self._segments[-1]]:
                    os.fdatasync(segment.fd)
                self._write_meta(clean=True)
            finally:
                for segment in self._segments:
                    os.close(segment.fd)
                self._segments.clear()
                self._unsynced.clear()
                self._release_lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> DurableQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
