"""The network of :mod:`mnistbench.models.swapan` (its paper, recipe and reported figure are there):
torch modules, imported only when a model is built."""

import torch
from torch import nn


class SwapanCNN(nn.Module):
    """(N, 1, 28, 28) float32 in [0, 1] -> logits (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 28, 3), nn.MaxPool2d(2),  # 26x26 -> 13x13, no activation (as the tutorial)
            nn.Flatten(), nn.Linear(4732, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
