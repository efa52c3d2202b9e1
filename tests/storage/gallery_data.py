"""Synthetic gallery data shared by the storage tests (unit vectors of a fake model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceapp.storage.gallery import Gallery, NewTemplate

REPO = Path(__file__).resolve().parents[1]
DIM = 8
MODEL = "sface-test"
PNG = b"\x89PNG\r\n\x1a\n" + b"fake png payload"
JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg payload"

_rng = np.random.default_rng(1234)


def unit(dim: int = DIM) -> np.ndarray:
    v = _rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def tmpl(model: str = MODEL, dim: int = DIM, **kw) -> NewTemplate:
    return NewTemplate(embedding=unit(dim), model_id=model, **kw)


def state(g: Gallery) -> tuple:
    """Everything observable about a gallery, for before/after comparisons."""
    people, templates = g.snapshot()
    return (
        tuple(people),
        tuple(
            (
                t.id,
                t.person_id,
                t.embedding.tobytes(),
                t.model_id,
                t.quality,
                t.thumbnail,
                t.source,
                t.created_at,
            )
            for t in templates
        ),
        g.revision(),
    )
