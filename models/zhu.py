"""The four networks of Zhu, "Classification of MNIST Handwritten Digit
Database using Neural Network" (seed 004): an MLP, a dense autoencoder whose
frozen encoder feeds a small classifier, a LeNet-inspired CNN, and a
convolutional autoencoder (a reconstruction model).

The MLP's recipe is stated fully (confidence high); the others are described
loosely (confidence low). Every recipe: Adam lr 0.005, batch 100, 6 epochs,
except the conv autoencoder's (batch 128, 20 epochs, weight decay 1e-5).
"""

from dataclasses import replace

from .nets import network
from .registry import register
from .spec import ModelSpec, Reported, TrainRecipe

CITATION = ("W. Zhu, Australian National University, 'Classification of MNIST Handwritten Digit "
            "Database using Neural Network' (seed 004)")
REF = "Zhu, seed 004"
PAPER = "Classification of MNIST Handwritten Digit Database using Neural Network"
ZHU_RECIPE = TrainRecipe("adam", 5e-3, 100, epochs=6, note="paper: Adam 5e-3, batch 100, 6 epochs")


MLP = register(ModelSpec(
    name="zhu-mlp", paper=PAPER, ref=REF, citation=CITATION, build=network("zhu", "ZhuMLP"), preprocess="unit", task="classify",
    recipe=ZHU_RECIPE,
    quick=replace(ZHU_RECIPE, note="quick: the full paper recipe (it fits: about 7 s on 2 cores)"),
    reported=Reported("accuracy", 0.9765, "97.65% test accuracy, mean of 10 runs (section 4)", mean_of=10),
    confidence="high", num_params=238_510, flops=476_400,
))

AUTOENCODER = register(ModelSpec(
    name="zhu-autoencoder", paper=PAPER, ref=REF, citation=CITATION, build=network("zhu", "ZhuAutoencoder"), preprocess="unit",
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
    name="zhu-cnn", paper=PAPER, ref=REF, citation=CITATION, build=network("zhu", "ZhuCNN"), preprocess="unit", task="classify",
    recipe=ZHU_RECIPE,
    quick=TrainRecipe("adam", 5e-3, 100, epochs=3, note="quick: 3 epochs instead of 6"),
    reported=Reported("accuracy", 0.9884, "98.84% test accuracy, mean of 10 runs (section 5)", mean_of=10),
    confidence="low", num_params=61_610, flops=682_512,
))

CONV_AUTOENCODER = register(ModelSpec(
    name="zhu-conv-autoencoder", paper=PAPER, ref=REF, citation=CITATION, build=network("zhu", "ZhuConvAutoencoder"),
    preprocess="signed", task="reconstruct", trainer="reconstruct",
    recipe=TrainRecipe("adam", 5e-3, 128, epochs=20, weight_decay=1e-5,
                       note="paper: MSE on [-1, 1] inputs, Adam 5e-3 (wd 1e-5), batch 128, 20 epochs"),
    quick=TrainRecipe("adam", 5e-3, 128, epochs=10, weight_decay=1e-5, note="quick: 10 epochs instead of 20"),
    reported=Reported("mse", 0.1129, "reconstruction loss 0.1129 (conv) against 0.1398 (dense) (section 6)"),
    confidence="low", num_params=5_729, flops=233_152,
    notes="Metric is test-set MSE on the model's [-1, 1] scale, not accuracy.",
))
