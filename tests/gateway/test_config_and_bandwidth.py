"""Configuration files (TOML/YAML, errors named by key), register decoding, bandwidth bounds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fleetcare.cli.app import build_app
from gateway.bandwidth import BandwidthFilter
from gateway.config import BandwidthRule, load_config
from gateway.errors import GatewayConfigError
from gateway.registers import DataType, WordOrder, decode_registers, encode_value

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "gateway" / "gateway.toml"


def test_the_example_configuration_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.gateway_id and config.site.modbus and config.bandwidth
    assert config.uplink.password is not None and "****" in repr(config.uplink.password)


def test_yaml_and_toml_give_the_same_configuration(tmp_path: Path) -> None:
    toml = tmp_path / "gw.toml"
    toml.write_text(
        'gateway_id = "gw-1"\ndata_dir = "/tmp/gw"\n[uplink]\nurl = "mqtt://central:1883"\n'
        '[[site.modbus]]\ndevice_id = "m-1"\nhost = "10.0.0.5"\n'
        '[[site.modbus.registers]]\nmetric = "temp_c"\naddress = 3\nscale = 0.1\n'
    )
    yaml_file = tmp_path / "gw.yaml"
    yaml_file.write_text(
        "gateway_id: gw-1\ndata_dir: /tmp/gw\nuplink: {url: 'mqtt://central:1883'}\n"
        "site:\n  modbus:\n    - device_id: m-1\n      host: 10.0.0.5\n"
        "      registers: [{metric: temp_c, address: 3, scale: 0.1}]\n"
    )
    assert load_config(toml) == load_config(yaml_file)


def test_every_problem_is_named_by_its_key(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        'gateway_id = "gw 1"\ndata_dir = "/tmp/gw"\n[uplink]\nurl = "http://x"\n'
        "max_in_flight = 0\n[bandwidth.temp_c]\n"
    )
    with pytest.raises(GatewayConfigError) as caught:
        load_config(path)
    keys = [key for key, _message in caught.value.problems]
    assert keys == ["gateway_id", "uplink.url", "uplink.max_in_flight", "bandwidth.temp_c"]
    assert "set deadband, interval_s or both" in str(caught.value)


def test_cli_check_refuses_a_bad_register_map_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        'gateway_id = "gw-1"\ndata_dir = "/tmp/gw"\n[uplink]\nurl = "mqtt://central"\n'
        '[[site.modbus]]\ndevice_id = "m-1"\nhost = "h"\n'
        '[[site.modbus.registers]]\nmetric = "a"\naddress = 0\ntype = "coil"\n'
    )
    runner = CliRunner()
    result = runner.invoke(build_app(), ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "site.modbus[0].registers[0].type: Input should be 'holding' or 'input'" in (
        result.output
    )
    example = ["gateway", "check", "--syntax-only", "--config", str(EXAMPLE)]
    good = runner.invoke(build_app(), example)
    assert good.exit_code == 0 and "ok: gateway" in good.output


def test_cli_check_finds_what_would_stop_the_gateway_on_this_machine(tmp_path: Path) -> None:
    from tests.gateway.conftest import write_tiny_model

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = tmp_path / "gw.toml"
    path.write_text(
        f'gateway_id = "gw-1"\ndata_dir = "{blocker}/data"\n'
        f'[uplink]\nurl = "mqtts://central:8883"\nca_file = "{tmp_path}/ca.pem"\n'
        f'[inference]\nmodel_dir = "{tmp_path}/model"\n'
    )
    runner = CliRunner()
    result = runner.invoke(build_app(), ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert f"uplink.ca_file: {tmp_path}/ca.pem: no such file" in output
    assert f"data_dir: {blocker} is a file, not a directory" in output
    assert "inference.model_dir:" in output
    syntax = runner.invoke(
        build_app(), ["gateway", "check", "--syntax-only", "--config", str(path)]
    )
    assert syntax.exit_code == 0, syntax.output
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    write_tiny_model(tmp_path / "model")
    path.write_text(path.read_text().replace(f"{blocker}/data", f"{tmp_path}/data"))
    fixed = runner.invoke(build_app(), ["gateway", "check", "--config", str(path)])
    assert fixed.exit_code == 0, fixed.output
    assert "inference on" in fixed.output
    assert not (tmp_path / "data").exists()  # a check creates nothing


@pytest.mark.parametrize(
    ("data_type", "order", "value"),
    [
        (DataType.INT16, WordOrder.BIG, -32768),
        (DataType.UINT16, WordOrder.BIG, 65535),
        (DataType.INT32, WordOrder.LITTLE, -2_000_000_000),
        (DataType.UINT32, WordOrder.BIG, 4_000_000_000),
        (DataType.FLOAT32, WordOrder.LITTLE, -1.5e-3),
    ],
)
def test_register_round_trip(data_type: DataType, order: WordOrder, value: float) -> None:
    registers = encode_value(value, data_type, order)
    assert all(0 <= r <= 65535 for r in registers)
    assert decode_registers(registers, data_type, order) == pytest.approx(value, rel=1e-7)


def test_word_order_and_bad_registers() -> None:
    assert decode_registers([0x0001, 0x0000], DataType.UINT32, WordOrder.BIG) == 65536
    assert decode_registers([0x0001, 0x0000], DataType.UINT32, WordOrder.LITTLE) == 1
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode_registers([1], DataType.FLOAT32, WordOrder.BIG)
    with pytest.raises(ValueError, match="hold nan"):
        decode_registers([0x7FC0, 0], DataType.FLOAT32, WordOrder.BIG)


def _reconstruct(times: np.ndarray, values: np.ndarray, flt: BandwidthFilter) -> np.ndarray:
    """Sample-and-hold reconstruction of what the filter let through, at every sample time."""
    held = math.nan
    out = np.empty_like(values)
    sent = 0
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        kept = flt.apply("dev", int(t), {"x": float(v)})
        if "x" in kept:
            held = kept["x"]
            sent += 1
        out[i] = held
    flt.sent = sent  # type: ignore[attr-defined]
    return out


def test_deadband_reconstruction_is_within_the_deadband() -> None:
    rng = np.random.default_rng(3)
    times = np.arange(20_000) * 100  # 10 Hz for ~33 minutes
    values = np.cumsum(rng.normal(0, 0.05, size=times.size)) + 20
    flt = BandwidthFilter({"x": BandwidthRule(deadband=0.2, interval_s=60)})
    rebuilt = _reconstruct(times, values, flt)
    assert np.max(np.abs(rebuilt - values)) <= 0.2
    assert flt.sent < times.size / 5  # at least 5x fewer values on the wire
    assert flt.suppressed == times.size - flt.sent


def test_heartbeat_sends_a_still_metric_every_interval() -> None:
    flt = BandwidthFilter({"x": BandwidthRule(deadband=1.0, interval_s=10)})
    times = np.arange(0, 60_001, 1_000)
    _reconstruct(times, np.full(times.size, 5.0), flt)
    assert flt.sent == 7  # t = 0, 10, ..., 60 s


def test_downsampling_error_is_bounded_by_slope_times_interval() -> None:
    times = np.arange(0, 100_000, 50)  # 20 Hz
    slope = 0.3  # units per second, the signal's largest rate of change
    values = slope * np.sin(times / 1000.0)  # |d/dt| <= 0.3 per second
    flt = BandwidthFilter({"x": BandwidthRule(interval_s=2.0)})
    rebuilt = _reconstruct(times, values, flt)
    assert np.max(np.abs(rebuilt - values)) <= slope * 2.0
    assert flt.sent == 50  # one value per 2 s


def test_null_transitions_always_pass_and_other_metrics_are_untouched() -> None:
    flt = BandwidthFilter({"x": BandwidthRule(deadband=10.0)})
    assert flt.apply("d", 0, {"x": 1.0, "y": 1.0}) == {"x": 1.0, "y": 1.0}
    assert flt.apply("d", 1, {"x": 2.0, "y": 1.0}) == {"y": 1.0}
    assert flt.apply("d", 2, {"x": None}) == {"x": None}
    assert flt.apply("d", 3, {"x": None}) == {}
    assert flt.apply("d", 4, {"x": 1.5}) == {"x": 1.5}
