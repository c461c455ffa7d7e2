"""The networks of :mod:`mnistbench.models.zhu` (its paper, recipe and reported figure are there):
torch modules, imported only when a model is built."""

import torch
from torch import nn


class ZhuMLP(nn.Module):
    """(N, 1, 28, 28) float32 in [0, 1] -> logits (N, 10): 784 -> 300 sigmoid -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.Sigmoid(), nn.Linear(300, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ZhuAutoencoder(nn.Module):
    """Dense autoencoder 784-128-64-12-6 (Tanh) with a mirrored Sigmoid decoder,
    plus a 6 -> 300 sigmoid -> 10 classifier on the code.

    ``forward`` is the exported classifier: (N, 1, 28, 28) in [0, 1] -> logits
    (N, 10). ``reconstruct`` gives (N, 1, 28, 28) in [0, 1]. Training runs two
    stages: the autoencoder on MSE, then the classifier with the encoder frozen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 64), nn.Tanh(),
            nn.Linear(64, 12), nn.Tanh(), nn.Linear(12, 6),
        )
        self.decoder = nn.Sequential(
            nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 64), nn.Tanh(), nn.Linear(64, 128), nn.Tanh(),
            nn.Linear(128, 784), nn.Sigmoid(),
        )
        self.classifier = nn.Sequential(nn.Linear(6, 300), nn.Sigmoid(), nn.Linear(300, 10))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).view(-1, 1, 28, 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))


class ZhuCNN(nn.Module):
    """(N, 1, 28, 28) float32 in [0, 1] -> logits (N, 10); "inspired by LeNet", ReLU and max-pool."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),            # 10x10 -> 5x5
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ZhuConvAutoencoder(nn.Module):
    """(N, 1, 28, 28) float32 in [-1, 1] -> reconstruction (N, 1, 28, 28) in [-1, 1]; code 8x2x2."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),  # 10x10 -> 5x5
            nn.Conv2d(16, 8, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2, 1),  # 3x3 -> 2x2
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(8, 16, 3, stride=2), nn.ReLU(),              # 5x5
            nn.ConvTranspose2d(16, 8, 5, stride=3, padding=1), nn.ReLU(),   # 15x15
            nn.ConvTranspose2d(8, 1, 2, stride=2, padding=1), nn.Tanh(),    # 28x28
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
