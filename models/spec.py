"""What a registered model is: its architecture builder and its paper, as data.

A :class:`ModelSpec` carries everything the rest of mnistbench needs to know
about one paper model (how to build it, how its inputs are scaled, how it is
trained, and what the paper claims) so that the reproduction table can put the
claim beside the measurement and tests can check every registered model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Literal

if TYPE_CHECKING:  # annotations only: the registry and `mnistbench list` need no torch until a model is built
    from torch import nn

Task = Literal["classify", "reconstruct"]
Confidence = Literal["high", "medium", "low"]
# Input scalings. The same names are used for foreign ONNX models (--preprocess).
#   unit       pixel / 255                      -> [0, 1]
#   mnist-norm (pixel / 255 - 0.1307) / 0.3081  (MNIST train mean and std, the
#              constants of the PyTorch MNIST example that seed 000 follows)
#   signed     pixel / 127.5 - 1                -> [-1, 1]
#   raw        pixel as float32                 -> [0, 255]
Preprocess = Literal["unit", "mnist-norm", "signed", "raw"]
Trainer = Literal["classify", "reconstruct", "two-stage-autoencoder"]
PROFILES = ("paper", "quick", "smoke")


@dataclass(frozen=True)
class TrainRecipe:
    """One training recipe. Exactly one of ``epochs`` and ``steps`` is set.

    Attributes:
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: peak learning rate.
        batch_size: images per optimiser step.
        epochs: passes over the (possibly subset) training set.
        steps: optimiser steps (a step-counted recipe such as rich-cnn's).
        weight_decay: L2 penalty passed to the optimiser.
        momentum: SGD momentum (ignored by Adam).
        adam_eps: Adam epsilon (Keras uses 1e-7, PyTorch 1e-8).
        adam_betas: Adam's (beta1, beta2) (PyTorch's default (0.9, 0.999)).
        schedule: ``"constant"``, ``"cosine"`` (per step, to 0) or ``"onecycle"``.
        train_images: use only the first N training images (None: all 60,000).
        eval_every_steps: also score the test set every N steps and keep the
            best figure (rich-cnn's Table I is such a best-of).
        stage_epochs: for the two-stage autoencoder, epochs of the
            reconstruction stage (the classifier stage uses ``epochs``).
        note: what this recipe is and, for reduced profiles, what it cuts.
    """

    optimizer: Literal["adam", "sgd"]
    lr: float
    batch_size: int
    epochs: int | None = None
    steps: int | None = None
    weight_decay: float = 0.0
    momentum: float = 0.0
    adam_eps: float = 1e-8
    adam_betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    train_images: int | None = None
    eval_every_steps: int | None = None
    stage_epochs: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("a TrainRecipe sets exactly one of epochs and steps")

    def describe(self) -> str:
        """One line: optimiser, lr, batch, length."""
        n, unit = (self.epochs, "epoch") if self.epochs is not None else (self.steps, "step")
        length = f"{n:,} {unit}{'s' if n != 1 else ''}"
        if self.stage_epochs is not None:
            length = f"{self.stage_epochs}+{length} (two stages)"
        subset = f", first {self.train_images:,} train images" if self.train_images else ""
        return f"{self.optimizer} lr {self.lr:g}, batch {self.batch_size}, {length}{subset}"


@dataclass(frozen=True)
class Reported:
    """The figure a paper reports.

    Attributes:
        metric: ``"accuracy"`` (top-1, fraction in [0, 1]) or ``"mse"``.
        value: the number, or None when the paper gives only words.
        text: the claim as the paper words it, with where it is stated.
        low, high: a stated range, when the paper gives one.
        short: the claim for a table cell when the number alone would misread it.
        mean_of: the claim is a mean over this many runs (None: a single run, a best-of or unstated).
    """

    metric: Literal["accuracy", "mse"]
    value: float | None
    text: str
    low: float | None = None
    high: float | None = None
    short: str = ""
    mean_of: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: architecture, paper, recipe and claim.

    Attributes:
        name: registry id, e.g. ``"lenet5"``.
        paper: title of the paper.
        ref: short reference for tables, e.g. ``"Zhu, seed 004"``.
        citation: full citation, with the seed file in ``../shared/seeds``.
        build: returns a fresh ``nn.Module`` mapping float32 ``(N, 1, 28, 28)``
            to logits ``(N, 10)`` (classify) or images ``(N, 1, 28, 28)``
            (reconstruct).
        preprocess: how uint8 pixels become the model's input (see ``Preprocess``).
        task: ``"classify"`` or ``"reconstruct"``.
        trainer: which training loop the recipe runs.
        recipe: the paper's recipe (profile ``paper``).
        quick: the reduced recipe of profile ``quick``; its ``note`` says what it cuts.
        reported: what the paper reports.
        confidence: how sure the spec is of the paper's architecture and recipe.
        num_params: trainable parameter count of ``build()`` (tested).
        flops: forward FLOPs of one image, 2 x multiply-adds (tested).
        notes: anything a reader of the results must know.
    """

    name: str
    paper: str
    ref: str
    citation: str
    build: Callable[[], nn.Module]
    preprocess: Preprocess
    task: Task
    recipe: TrainRecipe
    quick: TrainRecipe
    reported: Reported
    confidence: Confidence
    num_params: int
    flops: int
    trainer: Trainer = "classify"
    notes: str = ""
    input_shape: tuple[int, int, int] = (1, 28, 28)
    extra: dict = field(default_factory=dict)

    def recipe_for(self, profile: str) -> TrainRecipe:
        """The recipe of ``profile`` (``paper``, ``quick`` or ``smoke``).

        ``smoke`` keeps the paper's optimiser and batch size but trains 2,000
        images for one epoch (two stages of one epoch for the autoencoder):
        enough to show the loop works, meant for tests.

        Raises:
            UsageError: unknown profile.
        """
        if profile == "paper":
            return self.recipe
        if profile == "quick":
            return self.quick
        if profile == "smoke":
            r = self.recipe
            return replace(
                r,
                epochs=1,
                steps=None,
                train_images=2000,
                eval_every_steps=None,
                stage_epochs=1 if r.stage_epochs is not None else None,
                note="smoke: one epoch on the first 2,000 train images, for tests",
            )
        from .errors import UsageError

        raise UsageError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
