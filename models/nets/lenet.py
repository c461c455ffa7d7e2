"""The network of :mod:`mnistbench.models.lenet` (its paper, recipe and reported figure are there):
torch modules, imported only when a model is built."""

import torch
from torch import nn


class LeNet5(nn.Module):
    """(N, 1, 28, 28) float32, mnist-norm scaled -> logits (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),  # 28x28 -> 14x14
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),            # 10x10 -> 5x5
            nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
