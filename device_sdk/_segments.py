"""The on-disk format of ``DurableQueue``: segment files and the small state files.

A segment is a header followed by frames::

    header: b"FCQ1" | u8 format=1 | 3 pad | u64 first index | u64 created ms | u16 label length
            | label (UTF-8)
    frame:  u32 data length | u32 crc32(meta + data) | meta: u64 index, u64 append ms, u8 tag
            | data

All integers little-endian. Frames are appended with ``O_APPEND``; a segment is never
rewritten. ``queue.json`` and ``reserved.json`` are replaced atomically (write, rename).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import zlib
from pathlib import Path

import orjson

from device_sdk._clock import now_ms
from device_sdk._errors import QueueError, QueueLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

_log = logging.getLogger("device_sdk.queue")

MAGIC = b"FCQ1"
SEG_HEADER = struct.Struct("<4sBxxxQQH")  # magic, format, first index, created ms, label len
FRAME_HEAD = struct.Struct("<II")  # data length, crc32 of (meta + data)
FRAME_META = struct.Struct("<QQB")  # index, append time ms, tag
FRAME_OVERHEAD = FRAME_HEAD.size + FRAME_META.size
FRAME = struct.Struct("<IIQQB")  # head and meta in one unpack
READ_CHUNK = 256 * 1024  # scanning on open
MAX_ENTRY = 16 * 1024 * 1024


class Segment:
    """One segment file, open, with what is known about its content."""

    __slots__ = ("created_ms", "data_start", "end", "fd", "first", "label", "path", "size")

    def __init__(self, path: Path, fd: int, first: int, created_ms: int, label: str) -> None:
        self.path = path
        self.fd = fd
        self.first = first
        self.end = first  # one past the last index written
        self.created_ms = created_ms
        self.label = label
        self.data_start = 0
        self.size = 0  # bytes of valid content (header included)


def segment_name(first: int) -> str:
    return f"{first:020d}.seg"


def encode_frame(index: int, when: int, tag: int, data: bytes) -> bytes:
    meta = FRAME_META.pack(index, when, tag)
    return FRAME_HEAD.pack(len(data), zlib.crc32(data, zlib.crc32(meta))) + meta + data


def create_segment(directory: Path, first: int, label: str) -> Segment:
    """Create a new, empty segment whose first entry will be ``first``."""
    path = directory / segment_name(first)
    label_bytes = label.encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    created = now_ms()
    header = SEG_HEADER.pack(MAGIC, 1, first, created, len(label_bytes)) + label_bytes
    try:
        os.write(fd, header)
    except OSError:
        os.close(fd)
        raise
    segment = Segment(path, fd, first, created, label)
    segment.data_start = segment.size = len(header)
    return segment


def write_all(segment: Segment, blob: bytes) -> None:
    """Append ``blob``; on failure cut the file back to its last complete frame."""
    view = memoryview(blob)
    written = 0
    try:
        while written < len(blob):
            written += os.write(segment.fd, view[written:])
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(segment.fd, segment.size)
        raise QueueError(f"cannot write to {segment.path}: {exc}") from exc


def scan_segment(path: Path) -> Segment | None:
    """Open an existing segment and find where its valid frames end (``None``: empty)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.pread(fd, SEG_HEADER.size + 255, 0)
        if len(head) < SEG_HEADER.size:
            os.close(fd)
            path.unlink(missing_ok=True)
            return None
        magic, fmt, first, created, label_len = SEG_HEADER.unpack_from(head)
        if magic != MAGIC or fmt != 1:
            raise QueueError(f"{path} is not a fleetcare queue segment")
        label = head[SEG_HEADER.size : SEG_HEADER.size + label_len].decode(errors="replace")
        segment = Segment(path, fd, first, created, label)
        segment.data_start = SEG_HEADER.size + label_len
        offset = segment.data_start
        expected = first
        file_size = os.fstat(fd).st_size
        while offset < file_size:
            buf = os.pread(fd, min(READ_CHUNK, file_size - offset), offset)
            pos = 0
            progressed = False
            while pos + FRAME_OVERHEAD <= len(buf):
                length, crc = FRAME_HEAD.unpack_from(buf, pos)
                total = FRAME_OVERHEAD + length
                if pos + total > len(buf):
                    if total > len(buf) and pos == 0 and offset + total <= file_size:
                        buf = os.pread(fd, total, offset)  # one frame bigger than a chunk
                        continue
                    break
                body = buf[pos + FRAME_HEAD.size : pos + total]
                index = FRAME_META.unpack_from(body)[0]
                if zlib.crc32(body) != crc or index != expected:
                    _log.warning(
                        "queue segment %s: damaged frame at byte %d (index %d expected); "
                        "ignoring the %d bytes after it",
                        path.name,
                        offset + pos,
                        expected,
                        file_size - offset - pos,
                    )
                    file_size = offset + pos  # torn or corrupt: the rest is unusable
                    break
                expected = index + 1
                pos += total
                progressed = True
            offset += pos
            if not progressed:
                break
        segment.size = offset
        segment.end = expected
        return segment
    except BaseException:
        os.close(fd)
        raise


def take_lock(directory: Path) -> int:
    """``flock`` the directory's lock file; returns the fd (closing it releases the lock)."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is None:  # pragma: no cover - not POSIX
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise QueueLockedError(str(directory)) from None
        raise
    return fd


def read_json(path: Path) -> dict[str, object]:
    """A small JSON state file as a dict (``{}`` when missing or unreadable)."""
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def json_int(doc: dict[str, object], key: str, default: int) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def atomic_write(directory: Path, name: str, data: bytes, *, fsync: bool) -> None:
    """Replace ``directory/name`` with ``data`` (write a temporary file, rename it)."""
    tmp = directory / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / name)
    if fsync:
        fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every file system
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
