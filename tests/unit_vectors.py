"""Unit vectors for the search-index tests (shared by test_search_index and test_template_index)."""

from __future__ import annotations

import numpy as np


def unit(rows: np.ndarray) -> np.ndarray:
    """``rows`` scaled to L2 norm 1, float32."""
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def near(centres: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """Unit rows at about ``cosine`` from each of ``centres``."""
    noise = rng.normal(size=centres.shape).astype(np.float32)
    noise -= (noise * centres).sum(axis=1, keepdims=True) * centres
    return unit(centres + unit(noise) * np.sqrt(1 / cosine**2 - 1))
