"""Port discovery for services that listen on one port per worker."""

from __future__ import annotations

import socket

import pytest

from fleetcare.embedded.ports import free_tcp_port_run


def test_run_is_bindable_and_below_the_ephemeral_range() -> None:
    base = free_tcp_port_run(3)
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
        ephemeral_start = int(ranges.read().split()[0])
    assert base + 3 <= ephemeral_start
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
    try:
        for offset, sock in enumerate(sockets):
            sock.bind(("127.0.0.1", base + offset))
    finally:
        for sock in sockets:
            sock.close()


def test_run_skips_a_port_that_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    draws = iter([port - 1, port - 1, port + 1])
    monkeypatch.setattr("fleetcare.embedded.ports.random.randrange", lambda *_: next(draws))
    try:
        assert free_tcp_port_run(2) == port + 1
    finally:
        taken.close()


def test_run_needs_a_positive_count() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        free_tcp_port_run(0)
