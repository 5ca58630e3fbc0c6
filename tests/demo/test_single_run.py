"""A second demo on the same data directory is refused at once, naming the first."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetcare.cli.app import build_app
from fleetcare.demo.single_run import DemoAlreadyRunningError, only_demo_in

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fleetcare.demo.single_run import only_demo_in

    with only_demo_in(Path(sys.argv[1])):
        print("holding", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def first_demo(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the data directory, as a running demo does."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        try:
            yield process
        finally:
            process.kill()
            process.communicate()


def test_the_second_demo_is_refused_and_the_lock_goes_with_the_first(
    tmp_path: Path, first_demo: subprocess.Popen[str]
) -> None:
    with (
        pytest.raises(DemoAlreadyRunningError, match=f"pid {first_demo.pid}"),
        only_demo_in(tmp_path),
    ):
        pass
    first_demo.kill()  # however it ends, even killed
    first_demo.wait()
    with only_demo_in(tmp_path):
        assert (tmp_path / "demo" / "demo.lock").read_text().strip() != str(first_demo.pid)
    with only_demo_in(tmp_path):  # released on exit, taken again
        pass


def test_the_demo_command_says_so_before_starting_anything(
    tmp_path: Path, first_demo: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(build_app(), ["demo", "--duration", "1"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"another fleetcare demo (pid {first_demo.pid}) is running on the data directory" in text
    assert "[1/" not in text  # no step ran: no services started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
