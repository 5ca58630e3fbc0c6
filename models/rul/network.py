"""The sequence network: a 1D-CNN over a window with attention pooling and three heads."""

from __future__ import annotations

import torch
from torch import nn


class RulNet(nn.Module):
    """1D-CNN over ``(batch, length, channels)`` windows.

    Heads: remaining life as a fraction of the RUL cap, the logit of failing within the
    horizon, and failure-mode logits (one mode when none is labelled).
    """

    def __init__(
        self, n_channels: int, n_modes: int = 1, width: int = 64, dropout: float = 0.2
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
        self.trunk = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Dropout(dropout))
        self.rul_head = nn.Linear(width, 1)
        self.risk_head = nn.Linear(width, 1)
        self.mode_head = nn.Linear(width, max(1, n_modes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.body(x.transpose(1, 2))
        weights = torch.softmax(self.attention(h), dim=2)
        pooled = torch.cat([(h * weights).sum(dim=2), h[:, :, -1]], dim=1)
        z = self.trunk(pooled)
        return self.rul_head(z).squeeze(1), self.risk_head(z).squeeze(1), self.mode_head(z)


class ServingHeads(nn.Module):
    """What is exported: an ensemble's mean RUL in time units, risk and mode probabilities."""

    def __init__(self, members: list[RulNet], rul_cap: float) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.rul_cap = rul_cap

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ruls, risks, modes = [], [], []
        for member in self.members:
            rul, risk, mode = member(x)
            ruls.append(rul)
            risks.append(torch.sigmoid(risk))
            modes.append(torch.softmax(mode, dim=1))
        rul_mean = torch.clamp(torch.stack(ruls).mean(dim=0), min=0.0) * self.rul_cap
        return rul_mean, torch.stack(risks).mean(dim=0), torch.stack(modes).mean(dim=0)
