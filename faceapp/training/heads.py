"""Margin-based classification heads, used only while training (never exported).

Each head holds one learned centre per training person, ``W`` float32 ``(D, C)``, and
maps ``[embedding (B, D), label (B,) int]`` to logits float32 ``(B, C)`` from the cosine
between the L2-normalised embedding and the normalised centres:

* ArcFace (Deng et al. 2019): ``s * cos(theta + m)`` for the true class,
  ``s * cos(theta)`` for the others (with the usual fallback where ``theta + m > pi``);
* CosFace (Wang et al. 2018): ``s * (cos(theta) - m)`` for the true class;
* softmax: the normalised softmax ``s * cos(theta)`` (no margin).

The layers compute in float32 whatever the global dtype policy (mixed precision).
"""

from __future__ import annotations

import math

import keras
from keras import ops


class MarginHead(keras.layers.Layer):
    """Cosine classifier with an additive margin on the true class (see module doc)."""

    def __init__(self, classes: int, kind: str = "arcface", margin: float = 0.5, scale: float = 30.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if classes < 2:
            raise ValueError(f"a head needs at least 2 classes, got {classes}")
        if kind not in ("arcface", "cosface", "softmax"):
            raise ValueError(f"unknown head {kind!r}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        self.classes = int(classes)
        self.kind = kind
        self.margin = 0.0 if kind == "softmax" else float(margin)
        self.scale = float(scale)

    def build(self, input_shape):
        dim = int(input_shape[0][-1])
        self.centres = self.add_weight(
            name="centres", shape=(dim, self.classes), initializer="glorot_normal", trainable=True, dtype="float32"
        )

    def cosines(self, embeddings):
        """Cosine of each embedding with each class centre: ``(B, C)`` in [-1, 1]."""
        embeddings = ops.cast(embeddings, "float32")
        unit = embeddings / ops.maximum(ops.norm(embeddings, axis=1, keepdims=True), 1e-12)
        centres = self.centres / ops.maximum(ops.norm(self.centres, axis=0, keepdims=True), 1e-12)
        return ops.clip(ops.matmul(unit, centres), -1.0, 1.0)

    def call(self, inputs):
        embeddings, labels = inputs
        cosine = self.cosines(embeddings)
        one_hot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), self.classes, dtype="float32")
        if self.kind == "arcface" and self.margin:
            m = self.margin
            sine = ops.sqrt(ops.maximum(1.0 - cosine * cosine, 1e-9))
            with_margin = cosine * math.cos(m) - sine * math.sin(m)
            # Past theta = pi - m, cos(theta + m) is no longer decreasing: use CosFace-like fallback.
            with_margin = ops.where(cosine > math.cos(math.pi - m), with_margin, cosine - math.sin(math.pi - m) * m)
            target = with_margin
        elif self.kind == "cosface" and self.margin:
            target = cosine - self.margin
        else:
            target = cosine
        return self.scale * (one_hot * target + (1.0 - one_hot) * cosine)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.classes)

    def get_config(self):
        config = super().get_config()
        config.update(classes=self.classes, kind=self.kind, margin=self.margin, scale=self.scale)
        return config
