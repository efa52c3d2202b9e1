"""Typed, validated options of a training run.

Three frozen dataclasses, each with ``validate()`` raising ValueError for a bad value:
:class:`DataConfig` (which images, how faces are found, the split),
:class:`TrainConfig` (model, head, optimiser, schedule) and :class:`AugmentConfig`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HEADS = ("arcface", "cosface", "softmax")
OPTIMIZERS = ("adam", "sgd")
BALANCES = ("none", "sampling", "weights")
NO_FACE = ("skip", "centre")
PRECISIONS = ("auto", "float32", "mixed")
#: Convolution stages of SFace in order: the stem conv_1, then the blocks conv_2..conv_14.
STAGES = 14
#: Default margins: ArcFace adds an angle (radians), CosFace subtracts from the cosine.
DEFAULT_MARGIN = {"arcface": 0.5, "cosface": 0.35, "softmax": 0.0}


@dataclass(frozen=True)
class DataConfig:
    """Which images are used and how their faces are found.

    Attributes:
        data_dir: ``NAME/*.jpg`` folders, or flat ``NAME_NNNN.jpg`` files (in the folder
            or its ``images/`` subfolder, LFW's layout).
        people: only these people (None: everyone).
        min_images: people with fewer usable faces are left out (verification needs 2).
        max_images_per_person: at most this many images per person (None: all).
        max_people: at most this many people, the first in name order (None: all).
        val_fraction: share of the people held out for validation (by person).
        seed: seeds the split, the validation pairs and the augmentation.
        no_face: an image without a detected face is ``"skip"``-ped (and listed) or aligned
            with fixed ``"centre"`` landmarks (for face-centred crops such as LFW's; listed too).
        min_short_side: images with a shorter side under this many pixels are searched
            like ``faceapp eval lfw`` searches LFW's crops (also upscaled: YuNet misses
            faces that fill a small crop); larger ones only at their own size.
        cache_dir: where aligned crops are cached (None: the user cache directory).
    """

    data_dir: Path
    people: tuple[str, ...] | None = None
    min_images: int = 2
    max_images_per_person: int | None = None
    max_people: int | None = None
    val_fraction: float = 0.2
    seed: int = 0
    no_face: str = "skip"
    min_short_side: int = 300
    cache_dir: Path | None = None

    def validate(self) -> None:
        if self.min_images < 1:
            raise ValueError(f"min_images must be >= 1, got {self.min_images}")
        if self.max_images_per_person is not None and self.max_images_per_person < self.min_images:
            raise ValueError("max_images_per_person must be >= min_images")
        if self.max_people is not None and self.max_people < 2:
            raise ValueError(f"max_people must be >= 2, got {self.max_people}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.no_face not in NO_FACE:
            raise ValueError(f"no_face must be one of {', '.join(NO_FACE)}, got {self.no_face!r}")
        if not 32 <= self.min_short_side <= 2000:
            raise ValueError(f"min_short_side must be in [32, 2000], got {self.min_short_side}")


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of training crops (all off with ``enabled=False``).

    ``scale``: the crop is zoomed by a factor in ``[1 - scale, 1 + scale]``; ``shift``:
    translated by up to this fraction of 112 px; ``rotation``: degrees either way;
    ``brightness``: added to pixel values in [0, 255] scale, up to this many levels;
    ``contrast``: multiplied around the mean by ``[1 - c, 1 + c]``; ``blur``: probability
    of a Gaussian blur (sigma 0.5-1.5 px); ``mirror``: left-right flip with probability 0.5.
    """

    enabled: bool = True
    mirror: bool = True
    scale: float = 0.08
    shift: float = 0.04
    rotation: float = 8.0
    brightness: float = 25.0
    contrast: float = 0.2
    blur: float = 0.2

    def validate(self) -> None:
        if not 0.0 <= self.scale < 0.5:
            raise ValueError(f"augment scale must be in [0, 0.5), got {self.scale}")
        if not 0.0 <= self.shift < 0.3:
            raise ValueError(f"augment shift must be in [0, 0.3), got {self.shift}")
        if not 0.0 <= self.rotation <= 45.0:
            raise ValueError(f"augment rotation must be in [0, 45] degrees, got {self.rotation}")
        if not 0.0 <= self.brightness <= 128.0:
            raise ValueError(f"augment brightness must be in [0, 128], got {self.brightness}")
        if not 0.0 <= self.contrast < 1.0:
            raise ValueError(f"augment contrast must be in [0, 1), got {self.contrast}")
        if not 0.0 <= self.blur <= 1.0:
            raise ValueError(f"augment blur must be a probability, got {self.blur}")


@dataclass(frozen=True)
class TrainConfig:
    """The model and how it is optimised.

    Attributes:
        epochs, batch_size: as usual; ``batch_size`` is global (split over GPUs).
        learning_rate: the peak rate of the cosine schedule (after ``warmup_epochs``).
        optimizer: ``"adam"`` (AdamW) or ``"sgd"`` (momentum ``momentum``, Nesterov off).
        weight_decay: decoupled weight decay of either optimiser.
        head: ``"arcface"``, ``"cosface"`` or ``"softmax"`` (normalised, no margin).
        margin: the head's margin (None: :data:`DEFAULT_MARGIN`); ``scale``: logit scale.
        freeze: how many of SFace's 14 convolution stages, from the input, stay fixed
            (0 trains everything, 14 trains only the projection to the embedding).
        from_scratch: random initial weights instead of the shipped model's.
        balance: ``"none"``, ``"sampling"`` (each batch draws people uniformly) or
            ``"weights"`` (loss weighted by inverse class frequency).
        patience: early stopping after this many epochs without a better validation AUC.
        dropout: before the projection layer, as in SFace's training.
        precision: ``"auto"`` (mixed float16 on a GPU only), ``"float32"`` or ``"mixed"``.
        val_pairs: how many verification pairs (half same-person) are drawn from the
            validation people.
        steps_per_epoch: None: one pass over the training images.
        init_head_from_means: start the head's class centres at each person's mean
            embedding under the initial network (fast convergence when fine-tuning).
        verbose: Keras' progress bar (1), one line per epoch (2) or nothing (0).
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    head: str = "arcface"
    margin: float | None = None
    scale: float = 30.0
    freeze: int = 0
    from_scratch: bool = False
    balance: str = "none"
    patience: int = 3
    dropout: float = 0.4
    precision: str = "auto"
    val_pairs: int = 600
    steps_per_epoch: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    init_head_from_means: bool = True
    verbose: int = 1

    @property
    def head_margin(self) -> float:
        return DEFAULT_MARGIN[self.head] if self.margin is None else float(self.margin)

    def validate(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and 0.0 < self.learning_rate <= 1.0):
            raise ValueError(f"learning rate must be in (0, 1], got {self.learning_rate}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0.0 <= self.weight_decay < 1.0:
            raise ValueError(f"weight_decay must be in [0, 1), got {self.weight_decay}")
        if not 0.0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if not 0.0 <= self.head_margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {self.head_margin}")
        if self.head == "softmax" and self.head_margin:
            raise ValueError("the softmax head takes no margin")
        if not 1.0 <= self.scale <= 128.0:
            raise ValueError(f"scale must be in [1, 128], got {self.scale}")
        if not 0 <= self.freeze <= STAGES:
            raise ValueError(f"freeze must be in [0, {STAGES}], got {self.freeze}")
        if self.from_scratch and self.freeze:
            raise ValueError("freezing layers of a network trained from scratch makes no sense")
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {', '.join(BALANCES)}, got {self.balance!r}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.val_pairs < 4:
            raise ValueError(f"val_pairs must be >= 4, got {self.val_pairs}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {self.verbose}")
        self.augment.validate()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["margin"] = self.head_margin
        return data


def changed_settings(saved: dict[str, Any], wanted: dict[str, Any], nested: str = "config") -> list[str]:
    """The keys whose values differ between two runs' settings, sorted; the ``nested``
    dict's keys are compared one by one (``config.learning_rate``). For the one-line
    errors that refuse to resume or share a run made with other settings."""
    keys = sorted(k for k in {*saved, *wanted} if k != nested and saved.get(k) != wanted.get(k))
    old, new = saved.get(nested) or {}, wanted.get(nested) or {}
    return keys + [f"{nested}.{k}" for k in sorted({*old, *new}) if old.get(k) != new.get(k)]
