"""Training the sequence network: unit-wise validation split, early stopping, small ensembles."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from models.manifest import WindowSpec
from models.rul.calibration import RulCalibration, cut_windows, fit_isotonic
from models.rul.network import EnsembleGraph, RulNet, ServingHeads
from models.rul.windows import n_channels, sliding_windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (one seed; ``ensemble`` nets per seed)."""

    window: int = 30
    rul_cap: float = 125.0
    horizon: float = 30.0
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: float = 0.95
    weight_decay: float = 0.0
    width: int = 64
    dropout: float = 0.2
    ensemble: int = 3
    val_fraction: float = 0.1
    patience: int = 12
    risk_weight: float = 0.1
    mode_weight: float = 0.1
    age_scale: float | None = None
    min_history: int | None = None
    threads: int = 2
    seed: int = 0
    loss: Literal["mse", "huber"] = "mse"
    huber_delta: float = 0.1
    """In units of the RUL cap (0.1 x 125 = 12.5 cycles)."""
    schedule: Literal["exponential", "cosine"] = "exponential"
    """``exponential``: lr x ``lr_decay`` per epoch; ``cosine``: from lr to 0 over ``epochs``."""
    calibrate: bool = False
    """Fit an isotonic map from the ensemble's RUL to the true, uncapped RUL on each
    member's early-stopping units (``models.rul.calibration``); the target stays capped."""
    calibration_min_history: int = 31
    """Cuts for the calibration leave at least this many cycles of history..."""
    calibration_max_rul: float = 150.0
    """...and a true RUL between 1 and this after the cut."""
    calibration_step: float = 2.5
    """Knot spacing of the calibration map (time units)."""
    recurrent: int = 0
    """Units of a GRU over the convolutional features (``models.rul.network``); 0: none."""
    cross_fit: bool = False
    """Split the units once into ``ensemble`` disjoint folds, member ``i`` stopping early on
    fold ``i`` (``val_fraction`` is then ignored): every unit is held out by exactly one
    member, so a calibration is fitted on all training units instead of a few per member."""

    @property
    def window_spec(self) -> WindowSpec:
        return WindowSpec(length=self.window, age_scale=self.age_scale)


@dataclass(frozen=True)
class SequenceData:
    """Normalised sequences (NaN = missing) with the true, uncapped RUL at every step.

    Attributes:
        modes: failure-mode index per sequence, or ``None`` when modes are not labelled.
    """

    sequences: list[NDArray[np.float64]]
    rul: list[NDArray[np.float64]]
    ages: list[NDArray[np.float64]] | None = None
    modes: NDArray[np.int64] | None = None


@dataclass
class TrainedEnsemble:
    members: list[RulNet]
    config: TrainConfig
    n_channels: int
    n_modes: int
    history: list[dict[str, float]] = field(default_factory=list)
    held_out: list[list[int]] = field(default_factory=list)
    """Per member, the sequences it did not train on (its early-stopping units)."""
    calibration: RulCalibration | None = None
    """Applied to the mean RUL by both modules below, hence exported with the graph."""

    def serving_module(self) -> ServingHeads:
        module = ServingHeads(self.members, self.config.rul_cap, self.calibration)
        module.eval()
        return module

    def export_module(self, channel_multiple: int = 16) -> EnsembleGraph:
        """The same function as ``serving_module`` as one merged graph: what is exported."""
        return EnsembleGraph(
            self.members,
            self.config.rul_cap,
            self.config.window,
            channel_multiple,
            self.calibration,
        )


def _tensors(
    data: SequenceData, indices: NDArray[np.int64], config: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    sequences = [data.sequences[i] for i in indices]
    ages = [data.ages[i] for i in indices] if data.ages is not None else None
    windows = sliding_windows(sequences, config.window_spec, ages, min_history=config.min_history)
    rul = np.array(
        [data.rul[indices[s]][e] for s, e in zip(windows.sequence, windows.end_index, strict=True)]
    )
    modes = (
        data.modes[indices][windows.sequence]
        if data.modes is not None
        else np.full(rul.shape[0], -1, dtype=np.int64)
    )
    return (
        torch.from_numpy(windows.inputs),
        torch.from_numpy(np.minimum(rul, config.rul_cap) / config.rul_cap).float(),
        torch.from_numpy((rul <= config.horizon).astype(np.float32)),
        torch.from_numpy(modes.astype(np.int64)),
    )


def _loss(
    net: RulNet,
    batch: tuple[torch.Tensor, ...],
    config: TrainConfig,
) -> torch.Tensor:
    x, rul, risk, mode = batch
    rul_hat, risk_logit, mode_logits = net(x)
    if config.loss == "huber":
        loss = nn.functional.huber_loss(rul_hat, rul, delta=config.huber_delta)
    else:
        loss = nn.functional.mse_loss(rul_hat, rul)
    loss = loss + config.risk_weight * nn.functional.binary_cross_entropy_with_logits(
        risk_logit, risk
    )
    labelled = mode >= 0
    if mode_logits.shape[1] > 1 and bool(labelled.any()):
        loss = loss + config.mode_weight * nn.functional.cross_entropy(
            mode_logits[labelled], mode[labelled]
        )
    return loss


def _val_rmse(net: RulNet, x: torch.Tensor, rul: torch.Tensor, cap: float) -> float:
    net.eval()
    with torch.no_grad():
        predicted = torch.cat([net(chunk)[0] for chunk in torch.split(x, 4096)])
    net.train()
    return float(torch.sqrt(torch.mean((predicted - rul) ** 2)) * cap)


def _splits(
    n_sequences: int, config: TrainConfig, rng: np.random.Generator
) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Per member, its early-stopping units and its training units.

    By default each member draws its own ``val_fraction`` of the units; with
    ``cross_fit`` the members' early-stopping units are disjoint folds covering every unit.
    A single unit is both (nothing to hold out).
    """
    if config.cross_fit and n_sequences >= config.ensemble > 1:
        folds = np.array_split(rng.permutation(n_sequences).astype(np.int64), config.ensemble)
        return [
            (fold, np.concatenate([f for j, f in enumerate(folds) if j != i]))
            for i, fold in enumerate(folds)
        ]
    splits = []
    for _ in range(config.ensemble):
        order = rng.permutation(n_sequences).astype(np.int64)
        n_val = max(1, round(config.val_fraction * n_sequences)) if n_sequences > 1 else 0
        splits.append((order[:n_val], order[n_val:] if n_val else order))
    return splits


def train_ensemble(data: SequenceData, config: TrainConfig, n_modes: int = 1) -> TrainedEnsemble:
    """Train ``config.ensemble`` networks, each with its own unit-wise validation split.

    Each member keeps the weights of its epoch with the lowest validation RMSE.
    """
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    n_sequences = len(data.sequences)
    n_in = n_channels(data.sequences[0].shape[1], config.window_spec)
    members: list[RulNet] = []
    history: list[dict[str, float]] = []
    held_out: list[list[int]] = []
    splits = _splits(n_sequences, config, rng)
    for member, (val_idx, train_idx) in enumerate(splits):
        torch.manual_seed(config.seed * 1000 + member)
        n_val = val_idx.size
        held_out.append([int(i) for i in val_idx])
        train = _tensors(data, train_idx, config)
        val = _tensors(data, val_idx, config) if n_val else train
        net = RulNet(
            n_in,
            n_modes=n_modes,
            width=config.width,
            dropout=config.dropout,
            recurrent=config.recurrent,
        )
        optimiser = torch.optim.Adam(
            net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        schedule: torch.optim.lr_scheduler.LRScheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs)
            if config.schedule == "cosine"
            else torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=config.lr_decay)
        )
        best, best_state, stale = float("inf"), copy.deepcopy(net.state_dict()), 0
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(config.seed * 1000 + member)
        n_rows = train[0].shape[0]
        epochs_run = 0
        for _ in range(config.epochs):
            epochs_run += 1
            net.train()
            permutation = torch.randperm(n_rows, generator=generator)
            for start in range(0, n_rows, config.batch_size):
                rows = permutation[start : start + config.batch_size]
                optimiser.zero_grad()
                torch.autograd.backward(_loss(net, tuple(t[rows] for t in train), config))
                optimiser.step()
            schedule.step()
            score = _val_rmse(net, val[0], val[1], config.rul_cap)
            if score < best:
                best, best_state, stale = score, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
            if stale >= config.patience:
                break
        net.load_state_dict(best_state)
        net.eval()
        members.append(net)
        history.append(
            {
                "member": float(member),
                "epochs": float(epochs_run),
                "val_rmse": best,
                "seconds": time.perf_counter() - started,
            }
        )
        log.info("member %d: val RMSE %.2f after %d epochs", member, best, epochs_run)
    ensemble = TrainedEnsemble(members, config, n_in, n_modes, history, held_out)
    if config.calibrate:
        try:
            ensemble.calibration = fit_calibration(ensemble, data)
        except ValueError as error:  # no held-out unit long enough: serve uncalibrated
            log.warning("no calibration: %s", error)
        else:
            log.info("calibration: %d knots on %d held-out cuts",
                     len(ensemble.calibration.knots), ensemble.calibration.rows)  # fmt: skip
    return ensemble


def out_of_member_cuts(
    ensemble: TrainedEnsemble, data: SequenceData
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each member's RUL (time units) on every test-like cut of its held-out units, and
    the true RUL after each cut (``TrainConfig.calibration_min_history`` / ``_max_rul``).
    """
    config = ensemble.config
    predicted, true = [], []
    for net, units in zip(ensemble.members, ensemble.held_out, strict=True):
        cuts = cut_windows(
            [data.sequences[i] for i in units],
            [data.rul[i] for i in units],
            config.window_spec,
            [data.ages[i] for i in units] if data.ages is not None else None,
            config.calibration_min_history,
            config.calibration_max_rul,
        )
        if cuts.rul.size == 0:
            continue
        with torch.inference_mode():
            x = torch.from_numpy(cuts.inputs)
            rul = torch.cat([net(chunk)[0] for chunk in torch.split(x, 2048)])
        predicted.append(torch.clamp(rul, min=0.0).numpy().astype(np.float64) * config.rul_cap)
        true.append(cuts.rul)
    if not predicted:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(predicted), np.concatenate(true)


def fit_calibration(ensemble: TrainedEnsemble, data: SequenceData) -> RulCalibration:
    """The isotonic map fitted on ``out_of_member_cuts``.

    Raises:
        ValueError: no held-out unit is long enough to be cut.
    """
    predicted, true = out_of_member_cuts(ensemble, data)
    if predicted.size == 0:
        raise ValueError("calibration needs held-out units with test-like cuts")
    return fit_isotonic(predicted, true, ensemble.config.calibration_step)


def predict(
    ensemble: TrainedEnsemble, inputs: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """RUL (time units), risk within the horizon and mode probabilities, with torch."""
    module = ensemble.export_module()
    with torch.inference_mode():
        rul, risk, modes = module(torch.from_numpy(inputs))
    return rul.numpy(), risk.numpy(), modes.numpy()
