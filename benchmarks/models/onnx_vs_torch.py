"""onnxruntime vs torch on the same batch, and a fleet of devices scored end to end.

    .venv/bin/python -m benchmarks.models.onnx_vs_torch [--devices 10000] [--threads 1]

Both runtimes get the same number of threads and the same float32 batch of windows of
the declared benchmark network (the ensemble of 1D-CNNs with their GRUs over 14 sensors
+ masks + age).
Weights are the random initial ones: speed does not depend on them.

torch runs the exported module itself (``TrainedEnsemble.export_module``: the members
merged into one graph) in eval mode under ``torch.inference_mode``, and also the
members one after the other (``serving_module``); the faster of the two is the
baseline of the ratio. onnxruntime runs the exported artifact through ``OnnxModel`` (the
serving path: sequential execution, graph optimisation level ALL). The fleet figure
includes building the windows from raw readings (normalisation, masks, padding) with
``SequenceScorer``.
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
import torch

from models.datasets.cmapss import INFORMATIVE_SENSORS, SETTING_NAMES
from models.export import OPSET, export_sequence_onnx, finalise, sequence_tensors
from models.manifest import Manifest
from models.rul.cmapss_benchmark import default_config
from models.rul.network import RulNet
from models.rul.normalise import fit_normalisation
from models.rul.training import TrainedEnsemble
from models.rul.windows import n_channels
from models.serving import DeviceHistory, OnnxModel, SequenceScorer


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
    args = parser.parse_args()
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
    torch_forms = {
        "exported graph (merged, channels padded to 16)": ensemble.export_module(),
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

        def run_torch(module: torch.nn.Module) -> Callable[[], object]:
            def work() -> object:
                with torch.inference_mode():
                    return module(torch.from_numpy(batch))

            return work

        def run_onnx() -> object:
            return session.run(batch)

        # Interleaved, so that a burst of load from other jobs hits every form alike.
        times: dict[str, list[float]] = {name: [] for name in [*torch_forms, "onnx"]}
        for _ in range(args.runs):
            for name, module in torch_forms.items():
                times[name].append(_best_of(1, run_torch(module)))
            times["onnx"].append(_best_of(1, run_onnx))
        best = {name: min(values) for name, values in times.items()}
        onnx_s = best.pop("onnx")
        torch_s = min(best.values())
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
    print(f"batch of {args.devices} windows {spec.length}x{channels}, {args.threads} thread(s)")
    for label, seconds in best.items():
        print(
            f"torch {torch.__version__}, {label}: {seconds:.3f} s  "
            f"({args.devices / seconds:,.0f} windows/s)"
        )
    print(f"onnxruntime: {onnx_s:.3f} s  ({args.devices / onnx_s:,.0f} windows/s)")
    print(f"onnxruntime / fastest torch speed-up: {torch_s / onnx_s:.2f}x")
    print(
        f"fleet of {args.devices} devices, raw readings to scores: best {min(fleet):.2f} s, "
        f"median {statistics.median(fleet):.2f} s"
    )


if __name__ == "__main__":
    main()
