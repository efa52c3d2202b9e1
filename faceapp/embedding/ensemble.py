"""The fused embedding model: SFace and dlib's ResNet, one unit vector per face.

Verification by z-normalised fusion scores a pair ``w (s1 - m1) / d1 + (1 - w) (s2 - m2) / d2``
from the two networks' cosine similarities ``s1``, ``s2`` (``m``, ``d``: each network's
mean and spread of pair similarities; ``w``: SFace's share). Up to a constant shift and a
positive scale -- which a threshold absorbs -- that is ``a s1 + b s2`` with
``a = w / d1``, ``b = (1 - w) / d2`` normalised to ``a + b = 1``, which is exactly the
cosine similarity of the unit vectors ``[sqrt(a) u1, sqrt(b) u2]`` (``u1``, ``u2``: the
two networks' unit embeddings). So the fused model stores and compares those 256-d unit
vectors, and the gallery, the matcher, the search index and the open-set calibration
work on them unchanged. ``a`` and ``b`` are in the model card (``members[].fusion_weight``).

Input: the 112 x 112 ArcFace-aligned face (SFace) *and* dlib's 150 x 150 chip of the same
face (:func:`faceapp.vision.dlib_align.dlib_chip`), both BGR uint8.
"""

from __future__ import annotations

import logging

import numpy as np

from faceapp.embedding.modelcard import EmbeddingCard
from faceapp.errors import ModelError

logger = logging.getLogger(__name__)

__all__ = ["EnsembleEmbedder", "make_embedder"]


class EnsembleEmbedder:
    """Runs every member network of an ensemble card and concatenates their unit
    embeddings, each scaled by the square root of its fusion weight. Thread-safe.

    ``embed(faces, chips)``: BGR uint8 ``(N, 112, 112, 3)`` aligned faces and ``(N, 150,
    150, 3)`` dlib chips -> float32 ``(N, D)`` unit rows (``D`` = the members' dims summed).
    """

    needs_chip = True

    def __init__(self, card: EmbeddingCard, device: str = "auto", backend: str = "auto", max_batch: int = 32,
                 precision: str = "auto"):
        from faceapp.embedding.runtime import Embedder

        if len(card.members) != 2 or [m.architecture for m in card.members] != ["sface", "dlib_resnet"]:
            raise ModelError(f"model card {card.directory}: an ensemble must list an sface and a dlib_resnet member")
        weights = np.array(card.fusion_weights, np.float64)
        if weights.shape != (2,) or (weights <= 0).any() or abs(weights.sum() - 1.0) > 1e-6:
            raise ModelError(f"model card {card.directory}: the members' fusion weights must be positive and sum to 1")
        self.card = card
        self.model_id = card.model_id
        self.members = [Embedder(member, device, backend, max_batch, precision) for member in card.members]
        self.scales = np.sqrt(weights).astype(np.float32)
        self.dim = sum(member.dim for member in self.members)
        if self.dim != card.embedding_dim:
            raise ModelError(f"model card {card.directory}: embedding_dim {card.embedding_dim} is not the members' {self.dim}")
        self.choice = self.members[0].choice
        self.input_size = self.members[0].input_size
        self.chip_size = self.members[1].input_size
        self.backend = self.members[0].backend
        self.precision = self.members[0].precision  # SFace's (dlib's network runs in float32)
        self.max_batch = max_batch

    @property
    def device_name(self) -> str:
        return f"{self.members[0].device_name}, 2 networks"

    @property
    def keras_model(self):
        """None: the frame program (:mod:`faceapp.recognition.frame_program`) runs one network only."""
        return None

    def embed(self, faces: np.ndarray, chips: np.ndarray | None = None) -> np.ndarray:
        faces = np.asarray(faces)
        if chips is None:
            raise ValueError("the fused model needs dlib's chips of the faces too")
        chips = np.asarray(chips)
        if len(chips) != len(faces):
            raise ValueError(f"{len(faces)} faces but {len(chips)} chips")
        first = self.members[0].embed(faces)
        second = self.members[1].embed(chips)
        return np.concatenate([first * self.scales[0], second * self.scales[1]], axis=1).astype(np.float32)


def make_embedder(card: EmbeddingCard, device: str = "auto", backend: str = "auto", max_batch: int = 32,
                  precision: str = "auto"):
    """The embedder a card describes: an :class:`~faceapp.embedding.runtime.Embedder`, or for an ensemble card an
    :class:`EnsembleEmbedder` (whose ``embed`` takes dlib's
    chips too: ``needs_chip``)."""
    if card.is_ensemble:
        return EnsembleEmbedder(card, device, backend, max_batch, precision)
    from faceapp.embedding.runtime import Embedder

    return Embedder(card, device, backend, max_batch, precision)
