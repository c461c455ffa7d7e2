"""The network of :mod:`mnistbench.models.xiao` (its paper, recipe and reported figure are there):
torch modules, imported only when a model is built."""

from torch import nn


class XiaoDigit(nn.Module):
    """(N, 1, 28, 28) float32, mnist-norm scaled -> logits (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, 5), nn.ReLU(), nn.MaxPool2d(2),  # 24x24 -> 12x12
            nn.Conv2d(10, 20, 3), nn.ReLU(),                  # 10x10
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2000, 500), nn.ReLU(), nn.Linear(500, 10))

    def forward(self, x):
        return self.classifier(self.features(x))
