"""The four networks of Zhu, "Classification of MNIST Handwritten Digit
Database using Neural Network" (seed 004): an MLP, a dense autoencoder whose
frozen encoder feeds a small classifier, a LeNet-inspired CNN, and a
convolutional autoencoder (a reconstruction model).

The MLP's recipe is stated fully (confidence high); the others are described
loosely (confidence low). Every recipe: Adam lr 0.005, batch 100, 6 epochs,
except the conv autoencoder's (batch 128, 20 epochs, weight decay 1e-5).
"""

from dataclasses import replace

import torch
from torch import nn

from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe

CITATION = ("W. Zhu, Australian National University, 'Classification of MNIST Handwritten Digit "
            "Database using Neural Network' (seed 004)")
REF = "Zhu, seed 004"
PAPER = "Classification of MNIST Handwritten Digit Database using Neural Network"
ZHU_RECIPE = TrainRecipe("adam", 5e-3, 100, epochs=6, note="paper: Adam 5e-3, batch 100, 6 epochs")


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


MLP = register(ModelSpec(
    name="zhu-mlp", paper=PAPER, ref=REF, citation=CITATION, build=ZhuMLP, preprocess="unit", task="classify",
    recipe=ZHU_RECIPE,
    quick=replace(ZHU_RECIPE, note="quick: the full paper recipe (it fits: about 7 s on 2 cores)"),
    reported=Reported("accuracy", 0.9765, "97.65% test accuracy, mean of 10 runs (section 4)", mean_of=10),
    confidence="high", num_params=238_510, flops=476_400,
))

AUTOENCODER = register(ModelSpec(
    name="zhu-autoencoder", paper=PAPER, ref=REF, citation=CITATION, build=ZhuAutoencoder, preprocess="unit",
    task="classify", trainer="two-stage-autoencoder",
    recipe=TrainRecipe("adam", 5e-3, 100, epochs=6, stage_epochs=6,
                       note="paper: autoencoder 6 epochs on MSE, then classifier 6 epochs on frozen codes; "
                            "Adam 5e-3, batch 100"),
    quick=TrainRecipe("adam", 5e-3, 100, epochs=6, stage_epochs=6, note="quick: the full paper recipe (it fits: about 15 s on 2 cores)"),
    reported=Reported("accuracy", 0.7438, "74.38% test accuracy of the classifier on 6-d codes (section 4)"),
    confidence="low", num_params=225_076, flops=228_368,
    notes="Exported model = frozen encoder + classifier; the decoder is trained and checkpointed but not exported. "
          "FLOPs count the exported path.",
))

CNN = register(ModelSpec(
    name="zhu-cnn", paper=PAPER, ref=REF, citation=CITATION, build=ZhuCNN, preprocess="unit", task="classify",
    recipe=ZHU_RECIPE,
    quick=TrainRecipe("adam", 5e-3, 100, epochs=3, note="quick: 3 epochs instead of 6"),
    reported=Reported("accuracy", 0.9884, "98.84% test accuracy, mean of 10 runs (section 5)", mean_of=10),
    confidence="low", num_params=61_610, flops=682_512,
))

CONV_AUTOENCODER = register(ModelSpec(
    name="zhu-conv-autoencoder", paper=PAPER, ref=REF, citation=CITATION, build=ZhuConvAutoencoder,
    preprocess="signed", task="reconstruct", trainer="reconstruct",
    recipe=TrainRecipe("adam", 5e-3, 128, epochs=20, weight_decay=1e-5,
                       note="paper: MSE on [-1, 1] inputs, Adam 5e-3 (wd 1e-5), batch 128, 20 epochs"),
    quick=TrainRecipe("adam", 5e-3, 128, epochs=10, weight_decay=1e-5, note="quick: 10 epochs instead of 20"),
    reported=Reported("mse", 0.1129, "reconstruction loss 0.1129 (conv) against 0.1398 (dense) (section 6)"),
    confidence="low", num_params=5_729, flops=233_152,
    notes="Metric is test-set MSE on the model's [-1, 1] scale, not accuracy.",
))
