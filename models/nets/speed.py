"""The network of :mod:`mnistbench.models.speed` (its paper, recipe and reported figure are there):
torch modules, imported only when a model is built."""

import torch
import torch.nn.functional as F
from torch import nn


class SpeedCNN(nn.Module):
    """(N, 1, 28, 28) float32, mnist-norm scaled -> logits (N, 10).

    Conv(1->24, 5x5) -> MaxPool 2 -> ReLU -> Conv(24->32, 3x3) -> MaxPool 2 -> ReLU -> flatten 800
    -> Linear 256 ReLU -> Linear 10. Pooling before ReLU gives the same function as after it
    (both are monotone) on a quarter of the elements.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 24, 5)   # 28x28 -> 24x24, pooled to 12x12
        self.conv2 = nn.Conv2d(24, 32, 3)  # 12x12 -> 10x10, pooled to 5x5
        self.fc1 = nn.Linear(800, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))
