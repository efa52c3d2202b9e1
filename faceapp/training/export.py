"""Write a trained backbone as a model directory the whole app can use (``--model DIR``).

``MODEL_DIR/`` receives:

* ``<model_id>.weights.h5`` -- the trainable SFace weights (batch norms unfolded), as
  :func:`faceapp.embedding.runtime.load_keras_model` loads them;
* ``card.json`` -- the model card read by :func:`faceapp.embedding.modelcard.load_card`: a new
  unique ``model_id``, the weights' sha256, the input format, threshold presets
  calibrated on the validation pairs, and a ``training`` section (data summary,
  configuration, validation figures before and after, the people used).

The YuNet detector is not copied: :func:`faceapp.vision.detection.yunet_path` falls back to
the shipped one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.checksums import sha256_of
from faceapp.embedding.modelcard import EmbeddingCard, load_card
from faceapp.errors import ModelError
from faceapp.files import write_json

logger = logging.getLogger(__name__)

CARD_NAME = "card.json"
INPUT_FORMAT = {
    "size": 112,
    "colour_order": "RGB",
    "range": "0..255, scaled (x - 127.5) / 128 inside the model",
    "alignment": "arcface-5point",
}


def new_model_id(prefix: str = "sface-ft") -> str:
    """A fresh unique id, e.g. ``sface-ft-20261129-1203-3fa2c1``."""
    return f"{prefix}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M}-{uuid.uuid4().hex[:6]}"


def calibrate_thresholds(scores: np.ndarray, same: np.ndarray) -> dict[str, float]:
    """Threshold presets from validation pair scores: ``balanced`` = best accuracy,
    ``lenient`` = FAR 1e-2, ``strict`` = FAR 1e-3 (strict >= balanced >= lenient;
    presets that few pairs cannot support fall back to balanced +- 0.05)."""
    from faceapp.evaluation.metrics import best_threshold, tar_at_far

    balanced, _ = best_threshold(scores, same)
    if not math.isfinite(balanced):
        balanced = float(np.median(scores))
    presets = {"balanced": float(balanced)}
    for name, far, fallback, pick in (("lenient", 1e-2, balanced - 0.05, min), ("strict", 1e-3, balanced + 0.05, max)):
        impostors = int(np.count_nonzero(~np.asarray(same, bool)))
        value = tar_at_far(scores, same, far)[1] if impostors * far >= 1 else fallback
        value = fallback if not math.isfinite(value) else value
        presets[name] = float(pick(value, balanced))
    return {name: round(float(np.clip(value, -1.0, 1.0)), 4) for name, value in presets.items()}


def export_model(backbone, out_dir: str | os.PathLike, *, thresholds: dict[str, float], training: dict[str, Any],
                 model_id: str | None = None) -> EmbeddingCard:
    """Write ``backbone``'s weights and its card to ``out_dir``; returns the loaded card.

    Refuses (ModelError) a folder that already holds another model's card, so a run
    never half-overwrites a model in use.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    existing = [p for p in out.glob("*.json") if p.name != CARD_NAME and _has_model_id(p)]
    if existing:
        raise ModelError(f"{out} already holds another model card ({existing[0].name}); choose an empty --out folder")
    model_id = model_id or new_model_id()
    weights = out / f"{model_id}.weights.h5"
    backbone.save_weights(weights)
    card = {
        "model_id": model_id,
        "architecture": "sface",
        # A fine-tuned SFace is a derivative of the Apache-2.0 weights; the data's own terms add to it.
        "license": "Apache-2.0 (derived from SFace); check the terms of the training data",
        "weights": weights.name,
        "weights_sha256": sha256_of(weights),
        "embedding_dim": int(backbone.output_shape[-1]),
        "input": INPUT_FORMAT,
        "thresholds": {
            "default": "balanced",
            "presets": thresholds,
            "source": "calibrated on the validation people's pairs by faceapp train "
            "(balanced: best accuracy; lenient: FAR 1e-2; strict: FAR 1e-3)",
        },
        "training": training,
    }
    write_json(out / CARD_NAME, card, what="model card", default=_json_default)
    for old in out.glob("*.weights.h5"):  # weights of an earlier run into this folder
        if old != weights and old.parent == out:
            old.unlink()
    logger.info("model %s written to %s", model_id, out)
    return load_card(out)


def _has_model_id(path: Path) -> bool:
    try:
        return "model_id" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
