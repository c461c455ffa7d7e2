"""xiao-digit: the PyTorch CNN of Xiao, "The Image Classification Algorithm Was
Implemented on The MNIST Data Set" (seed 000).

The paper follows the PyTorch MNIST example closely: two convolutions, one
hidden dense layer, log-softmax (we export logits). Confidence high.
"""

from .nets import network
from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe

SPEC = register(ModelSpec(
    name="xiao-digit",
    paper="The Image Classification Algorithm Was Implemented on The MNIST Data Set",
    ref="Xiao, seed 000",
    citation="W. Xiao, 'The Image Classification Algorithm Was Implemented on The MNIST Data Set' (seed 000)",
    build=network("xiao", "XiaoDigit"),
    preprocess="mnist-norm",
    task="classify",
    # Paper section 3: Adam lr 1e-3, batch 16, 10 epochs, shuffled, no augmentation.
    recipe=TrainRecipe("adam", 1e-3, 16, epochs=10, note="paper: Adam 1e-3, batch 16, 10 epochs"),
    quick=TrainRecipe("adam", 1e-3, 16, epochs=1, note="quick: 1 epoch instead of 10"),
    # "98 or 99 percent": a figure in the 98s or the 99s, so the range is [98%, 100%).
    reported=Reported("accuracy", None, "'98 or 99 percent' test accuracy (conclusion)", low=0.98, high=0.9999,
                      short="98 or 99%"),
    confidence="high",
    num_params=1_007_590,
    flops=2_658_000,
))
