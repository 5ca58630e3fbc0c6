"""onnxruntime vs torch on the same batch, and a fleet of devices scored end to end.

    .venv/bin/python -m benchmarks.models.onnx_vs_torch [--devices 10000] [--threads 1]

Both runtimes get the same number of threads and the same float32 batch of windows of
the declared benchmark network (the ensemble of 1D-CNNs with their GRUs over 14 sensors
+ masks + age).
Weights are the random initial ones: speed does not depend on them.

torch runs the exported module itself (``TrainedEnsemble.export_module``: the members
merged into one graph), the same graph without the channel padding, and the members one
after the other (``serving_module``), in eval mode under ``torch.inference_mode``.
onnxruntime runs the exported artifact through ``OnnxModel`` (the serving path:
sequential execution, graph optimisation level ALL).

Every form is timed at several numbers of rows per call (``--rows-per-call``): the whole
batch in one call, or slices of it. Both runtimes are much faster on slices whose
activations stay in the caches, torch by far the most, so the baseline of the ratio is
the fastest torch form **at its fastest slicing**, and onnxruntime is quoted as served
(``SEQUENCE_ROWS_PER_CALL`` rows per call). The fleet figure includes building the
windows from raw readings (normalisation, masks, padding) with ``SequenceScorer``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models.datasets.cmapss import INFORMATIVE_SENSORS, SETTING_NAMES
from models.export import OPSET, export_sequence_onnx, finalise, sequence_tensors
from models.manifest import Manifest
from models.rul.cmapss_benchmark import default_config
from models.rul.network import EnsembleGraph, RulNet, strided
from models.rul.normalise import fit_normalisation
from models.rul.training import TrainedEnsemble
from models.rul.windows import n_channels
from models.serving import SEQUENCE_ROWS_PER_CALL, DeviceHistory, OnnxModel, SequenceScorer


def _best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--rows-per-call",
        default=f"all,256,64,{SEQUENCE_ROWS_PER_CALL},16",
        help="comma-separated rows per runtime call to time every form at ('all': one call)",
    )
    args = parser.parse_args()
    chunks = list(
        dict.fromkeys(
            args.devices if part.strip() == "all" else int(part)
            for part in args.rows_per_call.split(",")
        )
    )
    torch.set_num_threads(args.threads)
    config = replace(default_config("FD001"), threads=args.threads)
    spec = config.window_spec
    channels = n_channels(len(INFORMATIVE_SENSORS), spec)
    torch.manual_seed(0)
    members = [
        RulNet(channels, width=config.width, recurrent=config.recurrent)
        for _ in range(config.ensemble)
    ]
    ensemble = TrainedEnsemble(members, config, channels, 1)
    exported = ensemble.export_module()
    torch_forms: dict[str, torch.nn.Module] = {
        "exported graph (merged, channels padded to 16)": exported,
        "merged graph, channels not padded": ensemble.export_module(channel_multiple=1),
        "members in turn": ensemble.serving_module(),
    }
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(args.devices, spec.length, channels)).astype(np.float32)

    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        export_sequence_onnx(ensemble, directory / "model.onnx")
        settings = np.zeros((10, 3))
        inputs, outputs = sequence_tensors(ensemble)
        manifest = Manifest(
            name="bench", version="v1", kind="rul_sequence",
            feature_names=INFORMATIVE_SENSORS, window=spec,
            normalisation=fit_normalisation([settings], [rng.normal(size=(10, 14))], SETTING_NAMES),
            inputs=inputs, outputs=outputs, rul_cap=config.rul_cap,
            failure_modes=("hpc_degradation",), training_data="none (speed benchmark)",
            training_data_sha256="0" * 64, opset=OPSET,
        )  # fmt: skip
        finalise(manifest, directory)
        session = OnnxModel(directory, threads=args.threads)
        scorer = SequenceScorer(directory, threads=args.threads)

        def run_torch(module: torch.nn.Module, rows: int) -> Callable[[], object]:
            def work() -> object:
                with torch.inference_mode():
                    return [
                        module(torch.from_numpy(batch[start : start + rows]))
                        for start in range(0, len(batch), rows)
                    ]

            return work

        def run_onnx(rows: int) -> Callable[[], object]:
            return lambda: session.run(batch, rows_per_call=rows)

        # Every form at every number of rows per call, interleaved, so that a burst of
        # load from other jobs hits every cell alike.
        cells: dict[tuple[str, int], Callable[[], object]] = {}
        for rows in chunks:
            for name, module in torch_forms.items():
                cells[(f"torch {torch.__version__}, {name}", rows)] = run_torch(module, rows)
            cells[(f"onnxruntime {ort.__version__}", rows)] = run_onnx(rows)
        times: dict[tuple[str, int], list[float]] = {cell: [] for cell in cells}
        for _ in range(args.runs):
            for cell, work in cells.items():
                times[cell].append(_best_of(1, work))
        best = {cell: min(values) for cell, values in times.items()}
        length = spec.length + 10
        histories = [
            DeviceHistory(
                values=rng.normal(size=(length, 14)),
                settings=np.zeros((length, 3)),
                ages=np.arange(1.0, length + 1),
            )
            for _ in range(args.devices)
        ]
        fleet = [0.0] * args.runs
        for i in range(args.runs):
            started = time.perf_counter()
            scorer.score(histories)
            fleet[i] = time.perf_counter() - started
    flops = _flops_per_window(exported, spec.length)
    _report(best, args.devices, args.threads, spec.length, channels, fleet, flops)


def _flops_per_window(graph: EnsembleGraph, length: int) -> float:
    """Multiply-adds x 2 of one window through the merged graph (elementwise work left out)."""
    macs = 0.0
    for conv in (graph.conv1, graph.conv2, graph.conv3, graph.attention):
        macs += conv.weight.numel() * length  # (out, in per group, 1, kernel)
    steps = strided(torch.empty(0, 0, length), length).shape[-1]  # what each GRU reads
    for gru in graph.grus:
        assert isinstance(gru, torch.nn.GRU)
        macs += steps * 3 * gru.hidden_size * (gru.input_size + gru.hidden_size)
    macs += graph.trunk_weight.numel() + graph.head_weight.numel()
    return 2.0 * macs


def _rows_label(rows: int, devices: int) -> str:
    return f"all {devices}" if rows >= devices else str(rows)


def _report(
    best: dict[tuple[str, int], float],
    devices: int,
    threads: int,
    length: int,
    channels: int,
    fleet: list[float],
    flops: float,
) -> None:
    forms = list(dict.fromkeys(form for form, _ in best))
    chunks = list(dict.fromkeys(rows for _, rows in best))
    onnx_form = forms[-1]
    print(f"batch of {devices} windows {length}x{channels}, {threads} thread(s), best of runs")
    print("| rows per call | " + " | ".join(forms) + " | onnxruntime / fastest torch |")
    print("|---:|" + "---:|" * (len(forms) + 1))
    for rows in chunks:
        torch_here = min(best[(f, rows)] for f in forms[:-1])
        cells = " | ".join(f"{best[(f, rows)]:.3f} s" for f in forms)
        ratio = torch_here / best[(onnx_form, rows)]
        print(f"| {_rows_label(rows, devices)} | {cells} | {ratio:.2f}x |")
    torch_cell = min((c for c in best if c[0] != onnx_form), key=best.__getitem__)
    serving = (onnx_form, SEQUENCE_ROWS_PER_CALL)
    onnx_cell = min((c for c in best if c[0] == onnx_form), key=best.__getitem__)
    torch_s = best[torch_cell]
    print(
        f"fastest torch: {torch_cell[0]}, {_rows_label(torch_cell[1], devices)} rows per call: "
        f"{torch_s:.3f} s ({devices / torch_s:,.0f} windows/s)"
    )
    if serving in best:
        print(
            f"onnxruntime as served ({SEQUENCE_ROWS_PER_CALL} rows per call): "
            f"{best[serving]:.3f} s; vs the fastest torch: {torch_s / best[serving]:.2f}x"
        )
    print(
        f"fastest onnxruntime: {_rows_label(onnx_cell[1], devices)} rows per call: "
        f"{best[onnx_cell]:.3f} s; vs the fastest torch: {torch_s / best[onnx_cell]:.2f}x"
    )
    print(
        f"{flops / 1e6:.1f} MFLOP a window: the fastest torch at "
        f"{flops * devices / torch_s / 1e9:.0f} GFLOP/s, onnxruntime at "
        f"{flops * devices / best[onnx_cell] / 1e9:.0f} GFLOP/s"
    )
    print(
        f"fleet of {devices} devices, raw readings to scores: best {min(fleet):.2f} s, "
        f"median {statistics.median(fleet):.2f} s"
    )


if __name__ == "__main__":
    main()
