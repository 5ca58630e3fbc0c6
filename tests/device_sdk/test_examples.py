"""The runnable examples run, against a private broker, and do what they say."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from device_sdk.wire import Channel, build_topic
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.device_sdk.conftest import Collector

pytestmark = [pytest.mark.services, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CollectorFactory = Callable[[MosquittoBroker, str], Collector]


def run_example(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def test_quickstart(
    broker: MosquittoBroker, collector_factory: CollectorFactory, tmp_path: Path, topic_root: str
) -> None:
    collector = collector_factory(broker, topic_root)
    done = run_example(
        "device_quickstart.py",
        "--broker",
        broker.url,
        "--root",
        topic_root,
        "--queue",
        str(tmp_path / "q"),
        "--duration",
        "1",
        "--hz",
        "100",
    )
    assert done.returncode == 0, done.stderr
    collector.wait_for(lambda: len(collector.seqs("pump-0042")) >= 50)
    assert collector.events("pump-0042", "boot")
    assert collector.errors == []


def test_async_example_answers_a_command(
    broker: MosquittoBroker, collector_factory: CollectorFactory, tmp_path: Path, topic_root: str
) -> None:
    collector = collector_factory(broker, topic_root)
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "device_async.py"),
            "--broker",
            broker.url,
            "--root",
            topic_root,
            "--queue",
            str(tmp_path / "q"),
            "--duration",
            "3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        collector.wait_for(lambda: len(collector.seqs("fan-7")) > 0)
        command = {"v": 1, "id": "c1", "name": "set_speed", "args": {"rpm": 900}}
        collector.publish(build_topic("fan-7", Channel.COMMANDS, topic_root), orjson.dumps(command))
        collector.wait_for(lambda: bool(collector.messages(Channel.COMMAND_REPLY)))
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert collector.messages(Channel.COMMAND_REPLY)[0]["result"] == {"rpm": 900.0}


def test_twin_example_with_backend_console(
    broker: MosquittoBroker, collector_factory: CollectorFactory, tmp_path: Path, topic_root: str
) -> None:
    collector = collector_factory(broker, topic_root)
    sent = run_example(
        "backend_console.py",
        "desired",
        "compressor-3",
        '{"sample_hz": 50, "eco": true}',
        "--broker",
        broker.url,
        "--root",
        topic_root,
        "--version",
        "7",
    )
    assert sent.returncode == 0, sent.stderr
    done = run_example(
        "device_twin.py",
        "--broker",
        broker.url,
        "--root",
        topic_root,
        "--queue",
        str(tmp_path / "q"),
        "--duration",
        "1.5",
    )
    assert done.returncode == 0, done.stderr
    collector.wait_for(lambda: bool(collector.messages(Channel.CONFIG_REPORTED)))
    report = collector.messages(Channel.CONFIG_REPORTED)[-1]
    assert report["version"] == 7 and report["status"] == "applied"
    assert report["config"] == {"sample_hz": 20.0, "eco": True}
