"""swapan-cnn: the Keras CNN of Swapan, Narendar and Vishnu Kumar, "Image
Classification with MNIST data set using Convolutional Neural Network"
(seed 003).

The paper's text copies a public Keras tutorial; the architecture is that
tutorial's: one 3x3 convolution with no activation, max-pool, one hidden dense
layer. Keras defaults throughout (Glorot-uniform weights, zero biases, Adam eps 1e-7).
"""

from .nets import network
from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe

SPEC = register(ModelSpec(
    name="swapan-cnn",
    paper="Image Classification with MNIST data set using Convolutional Neural Network",
    ref="Swapan et al., seed 003",
    citation="Ch. Swapan, R. Narendar, M. Vishnu Kumar, Sree Dattha Institute of Engineering and Science, "
             "'Image Classification with MNIST data set using Convolutional Neural Network' (seed 003)",
    build=network("swapan", "SwapanCNN"),
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
