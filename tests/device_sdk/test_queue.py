"""DurableQueue: order, acknowledgements, persistence, the bound, indexes never reused."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from device_sdk import QueueError, QueueLockedError
from device_sdk.queue import DropReport, DurableQueue

SEG = 64 * 1024


def open_queue(path: Path, **kwargs: object) -> DurableQueue:
    options: dict[str, object] = {"max_bytes": 16 * SEG, "segment_bytes": SEG, "label": "b1"}
    options.update(kwargs)
    return DurableQueue(path, **options)  # type: ignore[arg-type]


def test_append_read_ack_in_order(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        assert queue.append(b"a", tag=1) == 1
        assert queue.append_many([b"b", b"c", b"d"], tag=2) == range(2, 5)
        items = queue.read(max_items=3)
        assert [(i.index, i.tag, i.data, i.label) for i in items] == [
            (1, 1, b"a", "b1"),
            (2, 2, b"b", "b1"),
            (3, 2, b"c", "b1"),
        ]
        assert [i.index for i in queue.read()] == [4]
        assert queue.read() == []
        assert queue.ack([2, 3]) == 2  # out of order: 1 is still unacknowledged
        stats = queue.stats()
        assert (stats.items, stats.acked_below) == (2, 1)
        assert queue.ack(range(1, 2)) == 1
        assert queue.stats().acked_below == 4
        assert queue.ack([2, 3, 99]) == 0  # already acknowledged / unknown: ignored


def test_rewind_rereads_only_unacknowledged(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        queue.append_many([b"%d" % i for i in range(10)])
        assert len(queue.read(max_items=10)) == 10
        queue.ack([1, 2, 5])
        queue.rewind()
        assert [i.index for i in queue.read(max_items=100)] == [3, 4, 6, 7, 8, 9, 10]


def test_read_respects_byte_budget_but_returns_at_least_one(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        queue.append_many([b"x" * 1000] * 5)
        assert len(queue.read(max_items=100, max_bytes=2500)) == 2
        assert len(queue.read(max_items=100, max_bytes=10)) == 1


def test_unacknowledged_entries_survive_reopen_and_indexes_continue(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        queue.append_many([b"e%d" % i for i in range(1, 101)])
        queue.read(max_items=50)
        queue.ack(range(1, 51))
    with open_queue(tmp_path, label="b2") as queue:
        items = queue.read(max_items=1000)
        assert [i.index for i in items] == list(range(51, 101))
        assert items[0].data == b"e51" and items[0].label == "b1"
        assert queue.append(b"new") == 101
        assert queue.read()[0].label == "b2"


def test_acknowledged_segments_are_deleted(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        for _ in range(300):  # ~5 segments (one append_many call stays in one segment)
            queue.append(b"x" * 1000)
        assert queue.stats().segments >= 4
        while items := queue.read(max_items=100):
            queue.ack([i.index for i in items])
        queue.checkpoint()
        stats = queue.stats()
        assert stats.items == 0 and stats.segments == 1
        assert len(list(tmp_path.glob("*.seg"))) == 1


def test_bound_drops_oldest_first_and_counts(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        for i in range(1, 4001):
            queue.append(orjson.dumps({"i": i}) + b" " * 300)
        stats = queue.stats()
        assert stats.bytes <= stats.max_bytes
        report = queue.take_drops()
        assert isinstance(report, DropReport)
        assert report.count == stats.dropped and report.first_index == 1
        remaining = queue.read(max_items=10_000, max_bytes=10**9)
        assert remaining[0].index == report.last_index + 1
        assert remaining[-1].index == 4000
        assert len(remaining) + stats.dropped == 4000
        assert queue.take_drops() is None
    with open_queue(tmp_path) as queue:  # the count is persisted
        assert queue.stats().dropped == stats.dropped


def test_acknowledged_entries_are_not_counted_as_dropped(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        queue.append_many([b"x" * 300] * 200)
        queue.ack(range(1, 201))
        for _ in range(50):
            queue.append_many([b"y" * 300] * 100)
        report = queue.take_drops()
        assert report is not None and report.first_index > 200
        assert report.count == queue.stats().dropped


def test_unreported_drops_survive_a_restart(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        for _ in range(40):
            queue.append_many([b"y" * 300] * 100)
        pending = queue.take_drops()
        assert pending is not None
        for _ in range(40):
            queue.append_many([b"y" * 300] * 100)
        dropped = queue.stats().dropped
    with open_queue(tmp_path) as queue:
        report = queue.take_drops()
        assert report is not None and report.count + pending.count == dropped
        assert report.first_index == pending.last_index + 1
    with open_queue(tmp_path) as queue:
        assert queue.take_drops() is None  # taken once, not again


def test_torn_tail_is_cut_and_indexes_are_not_reused(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    queue.append_many([b"entry-%d" % i for i in range(1, 11)])
    segment = sorted(tmp_path.glob("*.seg"))[-1]
    queue.close()
    with segment.open("ab") as handle:  # half a frame, as a write cut by power loss leaves
        handle.write(b"\x40\x00\x00\x00\x12\x34")
    with open_queue(tmp_path) as queue:
        assert [i.index for i in queue.read(max_items=100)] == list(range(1, 11))
        assert queue.append(b"next") == 11


def test_unclean_stop_on_another_boot_skips_to_the_reservation(tmp_path: Path) -> None:
    queue = open_queue(tmp_path, reserve_block=1000)
    queue.append_many([b"a"] * 10)
    # Simulate power loss: no clean close, and the OS booted again since the reservation.
    reserved = orjson.loads((tmp_path / "reserved.json").read_bytes())
    (tmp_path / "reserved.json").write_bytes(
        orjson.dumps({"reserved": reserved["reserved"], "boot": "another-boot"})
    )
    queue._release_lock()  # what the kernel does when the process dies
    reopened = open_queue(tmp_path, reserve_block=1000)
    try:
        # Entries 11.. may have been handed out (and sent) before the crash: never reuse them.
        assert reopened.append(b"b") == reserved["reserved"]
    finally:
        reopened.close()


def test_crash_on_the_same_boot_continues_without_a_gap(tmp_path: Path) -> None:
    queue = open_queue(tmp_path, reserve_block=1000)
    queue.append_many([b"a"] * 10)
    queue._release_lock()  # killed: no clean close
    reopened = open_queue(tmp_path, reserve_block=1000)
    try:
        assert reopened.append(b"b") == 11
    finally:
        reopened.close()


def test_one_queue_per_directory(tmp_path: Path) -> None:
    with open_queue(tmp_path), pytest.raises(QueueLockedError):
        open_queue(tmp_path)
    with open_queue(tmp_path):  # released on close
        pass


def test_invalid_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(QueueError):
        DurableQueue(tmp_path, max_bytes=100_000, segment_bytes=64 * 1024)


def test_large_append_many_is_split_across_segments(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        assert queue.append_many([b"z" * 500] * 400) == range(1, 401)  # ~3 segments
        assert queue.stats().segments >= 3
        assert [i.index for i in queue.read(max_items=1000, max_bytes=10**9)] == list(range(1, 401))
    with open_queue(tmp_path) as queue:
        assert len(queue.read(max_items=1000, max_bytes=10**9)) == 400
    with open_queue(tmp_path) as queue, pytest.raises(QueueError, match="too large"):
        queue.append_many([b"z" * 500] * 3000)  # more than the whole bound at once


def test_concurrent_appends_get_distinct_indexes_and_sync(tmp_path: Path) -> None:
    with open_queue(tmp_path, max_bytes=64 * SEG) as queue:
        got: list[list[int]] = [[] for _ in range(4)]

        def worker(slot: int) -> None:
            for _ in range(500):
                index = queue.append(b"v")
                queue.sync(index)
                got[slot].append(index)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = sorted(i for slot in got for i in slot)
        assert every == list(range(1, 2001))
        assert not queue.unsynced


def test_oldest_unacked_time(tmp_path: Path) -> None:
    with open_queue(tmp_path) as queue:
        assert queue.oldest_unacked_ms() is None
        queue.append(b"a", time_ms=1000)
        queue.append(b"b", time_ms=2000)
        assert queue.oldest_unacked_ms() == 1000
        queue.read()
        queue.ack([1])
        assert queue.oldest_unacked_ms() == 2000
        queue.ack([2])
        assert queue.oldest_unacked_ms() is None
