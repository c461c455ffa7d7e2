"""swapan-cnn: the Keras CNN of Swapan, Narendar and Vishnu Kumar, "Image
Classification with MNIST data set using Convolutional Neural Network"
(seed 003).

The paper's text copies a public Keras tutorial; the architecture is that
tutorial's: one 3x3 convolution with no activation, max-pool, one hidden dense
layer. Keras defaults throughout (Glorot-uniform weights, zero biases, Adam eps 1e-7).
"""

import torch
from torch import nn

from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe


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


SPEC = register(ModelSpec(
    name="swapan-cnn",
    paper="Image Classification with MNIST data set using Convolutional Neural Network",
    ref="Swapan et al., seed 003",
    citation="Ch. Swapan, R. Narendar, M. Vishnu Kumar, Sree Dattha Institute of Engineering and Science, "
             "'Image Classification with MNIST data set using Convolutional Neural Network' (seed 003)",
    build=SwapanCNN,
    preprocess="unit",
    task="classify",
    # Section IV: Adam (Keras defaults: lr 1e-3, eps 1e-7), batch 100, 5 epochs, inputs / 255.
    recipe=TrainRecipe("adam", 1e-3, 100, epochs=5, adam_eps=1e-7, note="paper: Adam 1e-3 (eps 1e-7), batch 100, 5 epochs"),
    quick=TrainRecipe("adam", 1e-3, 100, epochs=3, adam_eps=1e-7, note="quick: 3 epochs instead of 5"),
    reported=Reported("accuracy", 0.9806, "98.06% test accuracy, the best over its runs (section V)"),
    confidence="medium",
    num_params=607_394,
    flops=1_554_656,
    notes="Architecture from the Keras tutorial the text copies; the paper's learning-curve figure "
          "comes from another tutorial's deeper model, not registered here.",
))
