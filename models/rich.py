"""rich-cnn: the TensorFlow CNN of Rich, "MNIST Image Classification with
Convolutional Neural Network" (seed 001), as in the author's TensorFlow code
(the classic TF "Deep MNIST for experts" network). Confidence high.
"""

from .nets import network
from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe

SPEC = register(ModelSpec(
    name="rich-cnn",
    paper="MNIST Image Classification with Convolutional Neural Network",
    ref="Rich, seed 001",
    citation="J. Rich, Old Dominion University, 'MNIST Image Classification with Convolutional Neural Network' (seed 001)",
    build=network("rich", "RichCNN"),
    preprocess="unit",
    task="classify",
    # Section III and the author's TF code: Adam 1e-3, batch 50, 55,000 train
    # images (5,000 held out), the longest of the paper's runs: 10,000 steps,
    # scored on the test set every 100 steps.
    recipe=TrainRecipe("adam", 1e-3, 50, steps=10_000, train_images=55_000, eval_every_steps=100,
                       note="paper: Adam 1e-3, batch 50, 10,000 steps on 55,000 images, test scored every 100 steps"),
    quick=TrainRecipe("adam", 1e-3, 50, steps=1_500, train_images=55_000, eval_every_steps=500,
                      note="quick: 1,500 steps instead of 10,000; test scored every 500 steps instead of 100"),
    reported=Reported("accuracy", 0.9928,
                      "Table I: best test accuracy seen when scoring every 100 steps: 0.984 (1000 steps), "
                      "0.9888 (2500), 0.9918 (5000), 0.9928 (10000); a best-of selected on the test set"),
    confidence="high",
    num_params=3_274_634,
    flops=27_767_808,
    extra={"table_i": {1000: 0.984, 2500: 0.9888, 5000: 0.9918, 10000: 0.9928}},
))
