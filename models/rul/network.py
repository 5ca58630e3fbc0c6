"""The sequence network: a 1D-CNN over a window with attention pooling and three heads."""

from __future__ import annotations

import copy

import torch
from torch import nn

from models.rul.calibration import CalibrationLayer, RulCalibration

RECURRENT_STRIDE = 4
"""The GRU reads every 4th convolutional step (ending at the last): the convolutions
already see 11 steps each, and a quarter of the steps costs a quarter of the time."""


def strided(h: torch.Tensor, length: int) -> torch.Tensor:
    """``h[..., t]`` for ``t = ..., length - 1 - stride, length - 1``: ``(batch, channels, steps)``.

    ``length`` is a Python int (not ``h.shape[-1]``) so that the exported graph slices
    with constants.
    """
    return h[..., (length - 1) % RECURRENT_STRIDE :: RECURRENT_STRIDE]


class RulNet(nn.Module):
    """1D-CNN over ``(batch, length, channels)`` windows.

    The convolutional features are pooled by attention and at the last step; with
    ``recurrent > 0`` a GRU of that many units also reads them in time order, every
    ``RECURRENT_STRIDE``-th step up to the last, and its final state joins the pooled
    features. Heads: remaining life as a fraction of the RUL
    cap, the logit of failing within the horizon, and failure-mode logits (one mode when
    none is labelled).
    """

    def __init__(
        self,
        n_channels: int,
        n_modes: int = 1,
        width: int = 64,
        dropout: float = 0.2,
        recurrent: int = 0,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(n_channels, width, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, width, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, width, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.attention = nn.Conv1d(width, 1, kernel_size=1)
        self.gru = nn.GRU(width, recurrent, batch_first=True) if recurrent > 0 else None
        self.trunk = nn.Sequential(
            nn.Linear(2 * width + recurrent, width), nn.ReLU(), nn.Dropout(dropout)
        )
        self.rul_head = nn.Linear(width, 1)
        self.risk_head = nn.Linear(width, 1)
        self.mode_head = nn.Linear(width, max(1, n_modes))

    def convolutions(self) -> list[nn.Conv1d]:
        return [layer for layer in self.body if isinstance(layer, nn.Conv1d)]

    def trunk_linear(self) -> nn.Linear:
        layer = self.trunk[0]
        assert isinstance(layer, nn.Linear)
        return layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.body(x.transpose(1, 2))
        weights = torch.softmax(self.attention(h), dim=2)
        parts = [(h * weights).sum(dim=2), h[:, :, -1]]
        if self.gru is not None:
            parts.append(self.gru(strided(h, h.shape[-1]).transpose(1, 2))[1][0])
        z = self.trunk(torch.cat(parts, dim=1))
        return self.rul_head(z).squeeze(1), self.risk_head(z).squeeze(1), self.mode_head(z)


class ServingHeads(nn.Module):
    """What is exported: an ensemble's mean RUL in time units, risk and mode probabilities.

    With a ``calibration`` the mean RUL goes through it (``models.rul.calibration``).
    """

    def __init__(
        self, members: list[RulNet], rul_cap: float, calibration: RulCalibration | None = None
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.rul_cap = rul_cap
        self.calibration = CalibrationLayer(calibration) if calibration is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ruls, risks, modes = [], [], []
        for member in self.members:
            rul, risk, mode = member(x)
            ruls.append(rul)
            risks.append(torch.sigmoid(risk))
            modes.append(torch.softmax(mode, dim=1))
        rul_mean = torch.clamp(torch.stack(ruls).mean(dim=0), min=0.0) * self.rul_cap
        if self.calibration is not None:
            rul_mean = self.calibration(rul_mean)
        return rul_mean, torch.stack(risks).mean(dim=0), torch.stack(modes).mean(dim=0)


def _bias(layer: nn.Conv1d | nn.Conv2d | nn.Linear) -> torch.Tensor:
    assert layer.bias is not None
    return layer.bias


class EnsembleGraph(nn.Module):
    """The same function as ``ServingHeads``, with the members merged into one graph.

    Layer by layer the members run as one convolution: the first layer's filters are
    concatenated (one larger GEMM), the later layers and the attention are grouped
    convolutions (one group per member), and the dense layers are batched matrix
    products over the member axis. The convolutions are 2-D with a ``(1, k)`` kernel over
    ``(batch, channels, 1, length)`` so that onnxruntime's blocked-layout (NCHWc)
    kernels apply; ``channel_multiple`` pads the input channels with zeros (and the first
    layer's filters with zero weights) to a multiple of the block size, so that the first
    layer runs blocked too (16: AVX-512; 8 would do for AVX2). Members' GRUs stay one
    per member, each reading its member's slice of the features: one GRU with
    block-diagonal weights would do five times the arithmetic, and measured 1.3x slower
    under onnxruntime (5 members, 10,000 windows: 1.87 s against 1.41 s). Dropout is left
    out: this module only serves (eval mode). A ``calibration`` maps the mean RUL last.
    """

    def __init__(
        self,
        members: list[RulNet],
        rul_cap: float,
        length: int,
        channel_multiple: int = 1,
        calibration: RulCalibration | None = None,
    ) -> None:
        super().__init__()
        self.calibration = CalibrationLayer(calibration) if calibration is not None else None
        first = members[0]
        n, width = len(members), first.rul_head.in_features
        channels = first.convolutions()[0].in_channels
        self.n_members, self.width, self.length, self.rul_cap = n, width, length, rul_cap
        self.n_modes = first.mode_head.out_features
        self.extra_channels = -channels % channel_multiple
        self.conv1 = nn.Conv2d(channels + self.extra_channels, n * width, (1, 5), padding=(0, 2))
        self.conv2 = nn.Conv2d(n * width, n * width, (1, 5), padding=(0, 2), groups=n)
        self.conv3 = nn.Conv2d(n * width, n * width, (1, 3), padding=(0, 1), groups=n)
        self.attention = nn.Conv2d(n * width, n, (1, 1), groups=n)
        self.grus = nn.ModuleList([copy.deepcopy(m.gru) for m in members if m.gru is not None])
        heads = [[m.rul_head, m.risk_head, m.mode_head] for m in members]
        with torch.no_grad():
            self.conv1.weight.zero_()
            for conv, index in ((self.conv1, 0), (self.conv2, 1), (self.conv3, 2)):
                layers = [m.convolutions()[index] for m in members]
                weight = torch.cat([c.weight for c in layers]).unsqueeze(2)
                conv.weight[:, : weight.shape[1]].copy_(weight)
                _bias(conv).copy_(torch.cat([_bias(c) for c in layers]))
            self.attention.weight.copy_(
                torch.cat([m.attention.weight for m in members]).unsqueeze(2)
            )
            _bias(self.attention).copy_(torch.cat([_bias(m.attention) for m in members]))
            trunks = [m.trunk_linear() for m in members]
            self.trunk_weight = nn.Parameter(torch.stack([t.weight.t() for t in trunks]).clone())
            self.trunk_bias = nn.Parameter(
                torch.stack([_bias(t) for t in trunks]).unsqueeze(1).clone()
            )
            self.head_weight = nn.Parameter(
                torch.stack([torch.cat([h.weight for h in hs]).t() for hs in heads]).clone()
            )
            self.head_bias = nn.Parameter(
                torch.stack([torch.cat([_bias(h) for h in hs]) for hs in heads])
                .unsqueeze(1)
                .clone()
            )
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, width, length = self.n_members, self.width, self.length
        if self.extra_channels:
            x = nn.functional.pad(x, (0, self.extra_channels))
        h = torch.relu(self.conv1(x.transpose(1, 2).unsqueeze(2)))
        h = torch.relu(self.conv3(torch.relu(self.conv2(h))))
        weights = torch.softmax(self.attention(h).reshape(-1, n, 1, length), dim=3)
        h = h.reshape(-1, n, width, length)
        parts = [(h * weights).sum(dim=3), h[:, :, :, length - 1]]
        if len(self.grus):
            steps = strided(h, length)
            states = [gru(steps[:, m].transpose(1, 2))[1][0] for m, gru in enumerate(self.grus)]
            parts.append(torch.stack(states, dim=1))
        pooled = torch.cat(parts, dim=2)
        z = torch.relu(torch.matmul(pooled.transpose(0, 1), self.trunk_weight) + self.trunk_bias)
        out = torch.matmul(z, self.head_weight) + self.head_bias
        rul = torch.clamp(out[:, :, 0].mean(dim=0), min=0.0) * self.rul_cap
        if self.calibration is not None:
            rul = self.calibration(rul)
        risk = torch.sigmoid(out[:, :, 1]).mean(dim=0)
        modes = torch.softmax(out[:, :, 2:], dim=2).mean(dim=0)
        return rul, risk, modes
