"""``fleetcare demo`` end to end on embedded services: a small fleet through the SDK (one
shard of it through a gateway) into ingest, scoring, the care engine, webhooks to the demo's
receiver, the API and console; the summary adds up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetcare.config import ENV_PREFIX
from fleetcare.embedded.broker import BROKER_CHOICE_ENV

pytestmark = [pytest.mark.embedded, pytest.mark.slow]


def _fact(out: str, what: str) -> str:
    match = re.search(rf"^\s+{re.escape(what)}: (.*)$", out, re.MULTILINE)
    assert match, f"no {what!r} in the output:\n{out}"
    return match.group(1).strip()


def _number(text: str) -> int:
    return int(text.split()[0].replace(",", ""))


def _steps_into_first_day(out: str) -> int:
    """Half-hour steps between midnight and the span's first reading."""
    span = re.search(r"simulated span: \d{4}-\d\d-\d\d (\d\d):(\d\d)", out)
    assert span, out
    return int(span.group(1)) * 2 + int(span.group(2)) // 30


#: The simulated fleet's seed. With 60 devices and the default 28 days of history, the
#: fleet of this seed has 6 wear failures in the 26-day span, whatever the start date; the
#: default seed (42) has few, so whether a short run raised a ticket would hinge on one.
SEED = 7


def test_a_short_demo_runs_the_whole_loop_and_the_summary_adds_up(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ENV_PREFIX) and k != BROKER_CHOICE_ENV
    }
    env.update({"FLEETCARE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "220"})
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "fleetcare.cli", "demo", "--duration", "60",
         "--devices", "60", "--accounts", "8", "--day-s", "2",
         "--train-devices", "120", "--train-days", "180", "--seed", str(SEED)],
        env=env, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr
    # the live view's last frame ends its line, also when the output is not a terminal
    assert re.search(r"^\[13/13\] finish$", out, re.MULTILINE), out
    # the live view's last frame says where the fleet is in its span
    assert re.search(r"│ fleet +│ +(publishing a span of|done: its) [\d.]+ simulated days", out)
    # progress while the model trains, never a silent wait
    assert "generating a training history" in out
    assert "training the centrifugal_pump model" in out
    stored_text = _fact(out, "readings stored")
    stored, sent = _number(stored_text), _number(stored_text.split(" of ")[1])
    assert stored == sent > 0, stored_text
    assert _fact(out, "duplicate rows") == "0"
    # one shard of the fleet (12 of 60 devices) publishes to a local broker and reaches the
    # central one through a gateway process
    site = _fact(out, "gateway site")
    assert site.startswith("12 devices"), site
    via_text = _fact(out, "readings via the gateway")
    via = _number(via_text)
    site_sent = _number(via_text.split(" of ")[1])
    assert 0 < via == site_sent < stored, via_text
    forwarded = re.search(r"\(([\d,]+) entries forwarded of ([\d,]+) received, 0 queued", via_text)
    assert forwarded, via_text
    assert int(forwarded.group(1).replace(",", "")) >= via, via_text
    # the 28 days before the span were written first, and the span's counts leave them out
    history = _fact(out, "fleet history")
    assert "of 60 devices over the 28 days before the span" in history, history
    assert _number(history) == 60 * 28 * 48 + _steps_into_first_day(out) * 60, history
    assert _number(_fact(out, "predictions")) >= 1
    failures = _number(_fact(out, "failures in the span"))
    assert failures >= 5, out
    assert _number(_fact(out, "tickets raised")) >= 1, out
    health = _fact(out, "health scores")  # every account scored, each in one band
    accounts = re.search(r"of (\d+) accounts; now (.*)$", health)
    assert accounts and int(accounts.group(1)) == 8 and _number(health) >= 8, health
    bands = [int(n) for n in re.findall(r"(\d+) (?:critical|at risk|watch|healthy)", health)]
    assert sum(bands) == int(accounts.group(1)), health
    delivered = _fact(out, "webhooks delivered")
    assert _number(delivered) >= 1, delivered
    assert "; 0 with a bad signature" in delivered
    assert _fact(out, "console answering") == "yes"
    # The downlink: every device applied the operator's alarm limits (the gateway site's
    # through the gateway), and every device with a new ticket answered its self-test.
    configs = _fact(out, "device configs")
    assert configs.startswith("60 of 60 devices applied their alarm limits"), configs
    tests = _fact(out, "remote self-tests")
    sent = re.match(r"(\d+) sent, one per new ticket: (\d+) ok", tests)
    assert sent and int(sent.group(1)) == int(sent.group(2)) >= 1, tests
    caught = _fact(out, "failures caught ahead")
    assert 1 <= _number(caught) <= failures, out
    assert re.search(r"API key \(admin\): fc_\w+", out)
    assert re.search(r"API key \(csm\): fc_\w+", out)
    assert re.search(r"API key \(field, region [\w-]+\): fc_\w+", out)
    assert elapsed < 400
