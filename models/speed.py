"""speed-cnn: a small CNN designed for time-to-accuracy (``mnistbench speedrun``), not from the papers.

The network and recipe follow the public MNIST speed study "Training a NN to 99% accuracy on MNIST
in 0.76 seconds" (github.com/tuomaso/train_mnist_fast, final notebook): the PyTorch MNIST example
net narrowed to 24 and 32 channels, a 5x5 first convolution, max-pool before ReLU, a 256-unit
hidden layer, no dropout; Adam lr 0.01 with betas (0.7, 0.9), one-cycle learning rate, one epoch,
the whole training set resident in memory. That study reports 99.04% mean test accuracy in 0.76 s
on a laptop GPU (GTX 1660 Ti); it is the claim the reproduction table sets beside this model.
"""

from dataclasses import replace

from .nets import network
from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe

# Adam lr 0.01, betas (0.7, 0.9) and batch 256 (the speed study's final values); one-cycle as
# mnistbench implements it (linear warm-up over 25% of steps, linear decay to 0).
RECIPE = TrainRecipe("adam", 1e-2, 256, epochs=1, adam_betas=(0.7, 0.9), schedule="onecycle",
                     note="speed study: Adam 0.01, betas (0.7, 0.9), batch 256, one epoch, one-cycle lr")

SPEC = register(ModelSpec(
    name="speed-cnn",
    paper="Not a paper: 'Training a NN to 99% accuracy on MNIST in 0.76 seconds' (tuomaso/train_mnist_fast)",
    ref="speed study (not a paper)",
    citation="T. Oikarinen, github.com/tuomaso/train_mnist_fast, 8_Final_00s76.ipynb (a public speed study; "
             "registered by mnistbench for `mnistbench speedrun`, outside the five seed papers)",
    build=network("speed", "SpeedCNN"),
    preprocess="mnist-norm",
    task="classify",
    recipe=RECIPE,
    quick=replace(RECIPE, note="quick: the full recipe (one epoch; it is the fastest in the registry)"),
    reported=Reported("accuracy", 0.9904, "99.04% mean test accuracy after one epoch, 0.76 s on a laptop GPU "
                      "(the speed study's final notebook)"),
    confidence="high",
    num_params=215_194,
    flops=2_488_320,  # 2 x MACs of convs and linears (torch FlopCounterMode)
    extra={"outside_papers": True},
    notes="Designed for speed, outside the papers. Its figure of merit is time to 99.0% test accuracy.",
))
