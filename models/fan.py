"""fan-resnet: the "ResNet18" of Fan, "Classifying Handwritten Numbers Using
Convolutional Neural Networks" (seed 002).

What the paper draws is not a true ResNet-18: it is a 4x-wide CIFAR-style
ResNet-20 (three stages of three basic blocks at 64/128/256 channels, no
stem max-pool). No code was published; confidence low.
"""

from .nets import network
from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe

SPEC = register(ModelSpec(
    name="fan-resnet",
    paper="Classifying Handwritten Numbers Using Convolutional Neural Networks",
    ref="Fan, seed 002",
    citation="S. Fan, Beijing University of Technology, 'Classifying Handwritten Numbers Using "
             "Convolutional Neural Networks' (seed 002)",
    build=network("fan", "FanResNet"),
    preprocess="mnist-norm",
    task="classify",
    # The paper gives 30 epochs and batch 128 only; the optimiser is ours
    # (the standard CIFAR ResNet recipe): SGD momentum 0.9, lr 0.1, wd 5e-4, cosine.
    recipe=TrainRecipe("sgd", 0.1, 128, epochs=30, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                       note="paper: 30 epochs, batch 128; optimiser not stated, ours: SGD 0.9, lr 0.1, wd 5e-4, cosine"),
    quick=TrainRecipe("sgd", 0.05, 128, epochs=1, train_images=12_288, momentum=0.9, weight_decay=5e-4,
                      schedule="onecycle",
                      note="quick: 1 epoch on the first 12,288 images (96 steps), one-cycle lr peaking at 0.05, "
                           "instead of 30 epochs on 60,000 (0.7% of the paper's compute)"),
    reported=Reported("accuracy", None, "'stable between 98% and 99%' (copied from seed 000's conclusion; weak)",
                      low=0.98, high=0.99, short="98–99%"),
    confidence="low",
    num_params=4_326_602,
    flops=989_977_600,
    # 30 epochs at about 1.3 s per 128-image step on 2 CPU cores (measured, quick profile): ~2 days.
    extra={"cpu_infeasible": "30 epochs would take about two days on 2 CPU cores"},
    notes="A 4x-wide CIFAR ResNet-20, not a true ResNet-18. Expect about 99.5% with the full recipe.",
))
