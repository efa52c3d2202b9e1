"""Unknown visitors: who an unknown face is, across tracks, runs and days.

An in-memory index of every unknown face remembered (the embeddings of unknown
sightings, each with its visitor, or none yet) answers, for a new unknown face:

* it is visitor ``V`` when its best similarity to ``V``'s faces reaches ``join``
  (calibrated for the model on LFW: :data:`DEFAULT_JOIN`, or the model card's
  ``visitors`` section);
* otherwise it starts a new visitor only with enough evidence, like Immich's core-face
  rule: ``min_faces`` mutually close faces, either from one track (tracking already
  ties them together) or from faces not clustered yet (earlier sightings, photos).

:func:`recluster` is the offline counterpart (scikit-learn's DBSCAN, cosine distance
``1 - join``, ``min_samples = min_faces``).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_JOIN = 0.50  # see models/README.md (tools/calibrate_visitors.py)
DEFAULT_MIN_FACES = 3


@dataclass(frozen=True)
class VisitorConfig:
    join: float = DEFAULT_JOIN
    min_faces: int = DEFAULT_MIN_FACES
    faces_per_visitor: int = 24  # the most faces kept in memory per visitor (the best first)

    @classmethod
    def from_card(cls, data: dict | None) -> VisitorConfig:
        if not data:
            return cls()
        return cls(join=float(data.get("join", DEFAULT_JOIN)), min_faces=int(data.get("min_faces", DEFAULT_MIN_FACES)))


class VisitorIndex:
    """Unknown faces in memory. A face's *owner* is a visitor id (> 0), a key of a
    visitor being created (< 0), or None (not clustered yet: then ``ref`` says which
    sighting it belongs to, so that it can be adopted)."""

    def __init__(self, dim: int, config: VisitorConfig | None = None) -> None:
        self.config = config or VisitorConfig()
        self.dim = dim
        self._faces = np.zeros((0, dim), np.float32)
        self._owners: list[int | None] = []
        self._refs: list[Hashable] = []

    def __len__(self) -> int:
        return len(self._owners)

    def add(self, embeddings: np.ndarray, owner: int | None, ref: Hashable = None) -> None:
        rows = np.asarray(embeddings, np.float32).reshape(-1, self.dim)
        if owner is not None and owner > 0:
            kept = sum(1 for o in self._owners if o == owner)
            rows = rows[: max(0, self.config.faces_per_visitor - kept)]
        if not len(rows):
            return
        self._faces = np.concatenate([self._faces, rows])
        self._owners += [owner] * len(rows)
        self._refs += [ref] * len(rows)

    def rename(self, old: int, new: int) -> None:
        """A visitor key became a stored id (or two visitors merged)."""
        self._owners = [new if o == old else o for o in self._owners]

    def forget(self, owner: int) -> None:
        keep = [i for i, o in enumerate(self._owners) if o != owner]
        self._faces, self._owners, self._refs = self._faces[keep], [self._owners[i] for i in keep], [self._refs[i] for i in keep]

    def adopt(self, refs: set, owner: int) -> None:
        """Faces of the sightings ``refs`` (not clustered yet) now belong to ``owner``."""
        self._owners = [owner if o is None and r in refs else o for o, r in zip(self._owners, self._refs)]

    def who(self, embedding: np.ndarray) -> tuple[int | None, float]:
        """The visitor (id or key) ``embedding`` joins, and its best similarity (None: nobody)."""
        owned = [i for i, o in enumerate(self._owners) if o is not None]
        if not owned:
            return None, 0.0
        scores = self._faces[owned] @ np.asarray(embedding, np.float32)
        best = int(np.argmax(scores))
        if float(scores[best]) >= self.config.join:
            return self._owners[owned[best]], float(scores[best])
        return None, float(scores[best])

    def core_with(self, embeddings: np.ndarray) -> set:
        """The refs of not-yet-clustered sightings that, together with ``embeddings``
        (the new faces, ``(k, D)``), make ``min_faces`` mutually close faces; empty if
        there are not enough. Mutually close: each face reaches ``join`` with all the
        new ones' best match (a star around the new faces, as DBSCAN's core points)."""
        new = np.asarray(embeddings, np.float32).reshape(-1, self.dim)
        free = [i for i, o in enumerate(self._owners) if o is None]
        if not free or not len(new):
            return set()
        close = (self._faces[free] @ new.T).max(axis=1) >= self.config.join
        refs = {self._refs[free[i]] for i in np.flatnonzero(close)}
        faces = len(new) + int(close.sum())
        return refs if faces >= self.config.min_faces and refs else set()


def mutually_close(embeddings: np.ndarray, join: float) -> bool:
    """True when every pair of these faces (one track's) reaches ``join`` on average."""
    rows = np.asarray(embeddings, np.float32)
    if len(rows) < 2:
        return False
    similarity = rows @ rows.T
    upper = similarity[np.triu_indices(len(rows), 1)]
    return float(upper.mean()) >= join


def recluster(embeddings: np.ndarray, join: float, min_faces: int) -> np.ndarray:
    """Cluster labels (int64 ``(N,)``, -1: noise) of unit ``embeddings`` by DBSCAN with
    cosine distance ``1 - join`` and ``min_samples = min_faces``."""
    from sklearn.cluster import DBSCAN

    if not len(embeddings):
        return np.zeros(0, np.int64)
    model = DBSCAN(eps=max(1e-6, 1.0 - join), min_samples=min_faces, metric="cosine")
    return model.fit_predict(np.asarray(embeddings, np.float64)).astype(np.int64)


def cluster_incrementally(embeddings: np.ndarray, config: VisitorConfig | None = None) -> np.ndarray:
    """Labels (int64 ``(N,)``) that the live rule gives faces seen one at a time, in
    order, each on its own (as the photos of a folder): joining a visitor, founding one
    with enough close faces not clustered yet, or staying alone (a label of its own)."""
    config = config or VisitorConfig()
    rows = np.asarray(embeddings, np.float32)
    index = VisitorIndex(rows.shape[1] if rows.ndim == 2 else 0, config)
    labels = np.full(len(rows), -1, np.int64)
    next_label = 1
    for i, face in enumerate(rows):
        owner, _ = index.who(face)
        if owner is None:
            core = index.core_with(face[None])
            if core:
                owner, next_label = next_label, next_label + 1
                index.adopt(core, owner)
                labels[sorted(core)] = owner
        index.add(face[None], owner, ref=i)
        labels[i] = -1 if owner is None else owner
    alone = np.flatnonzero(labels < 0)
    labels[alone] = next_label + np.arange(len(alone))
    return labels
