"""What an embedding model directory's machine-readable card says.

A *model directory* holds ``<name>.json`` (the card) next to the weights it names. The
shipped one is the repository's ``models/`` folder; ``FACEAPP_MODELS`` or ``--model DIR``
picks another (e.g. one written by ``faceapp train``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceapp.checksums import sha256_of, verified_file
from faceapp.errors import ModelError
from faceapp.paths import DEFAULT_MODEL_DIR, model_card_file, model_dir

logger = logging.getLogger(__name__)

DEFAULT_CARD = "sface_dlib_fused.json"  # the default model: SFace fused with dlib's ResNet

__all__ = ["DEFAULT_CARD", "DEFAULT_MODEL_DIR", "EmbeddingCard", "load_card", "model_dir", "sha256_of", "verified_file"]


@dataclass(frozen=True)
class EmbeddingCard:
    """The machine-readable model card of an embedding model."""

    directory: Path
    model_id: str
    architecture: str
    weights: Path
    weights_sha256: str | None
    embedding_dim: int
    threshold_presets: dict[str, float]
    default_preset: str
    license: str = "not stated"
    open_set: dict | None = None  # the open-set calibration (faceapp.recognition.decision)
    visitors: dict | None = None  # unknown visitors' clustering (faceapp.recognition.visitors)
    #: A track's same-face similarity on this model's scale (faceapp.recognition.live); None: the SFace default.
    same_face: float | None = None
    #: Two faces of one person at least this alike add nothing to each other as templates
    #: (None: SFace's 0.92, :data:`faceapp.recognition.corrections.TOO_SIMILAR`).
    near_duplicate: float | None = None
    #: An ensemble's member networks (architecture "ensemble", faceapp.embedding.ensemble), and
    #: each one's fusion weight (summing to 1); empty for a single network.
    members: tuple[EmbeddingCard, ...] = ()
    fusion_weights: tuple[float, ...] = ()
    #: The card's own JSON file (None for an ensemble's member).
    card_file: Path | None = None

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @property
    def default_threshold(self) -> float:
        return self.threshold_presets[self.default_preset]

    def threshold(self, value: str | float | None) -> float:
        """A preset name, a number, or None (the default) -> a cosine threshold."""
        if value is None:
            return self.default_threshold
        if isinstance(value, str) and value in self.threshold_presets:
            return self.threshold_presets[value]
        try:
            number = float(value)
        except (TypeError, ValueError):
            names = ", ".join(sorted(self.threshold_presets))
            raise ModelError(f"threshold must be a number in [-1, 1] or one of: {names}") from None
        if not -1.0 <= number <= 1.0:
            raise ModelError(f"threshold {number} is outside [-1, 1]")
        return number


def load_card(directory: str | os.PathLike | None = None) -> EmbeddingCard:
    """Read the embedding model card of a model directory (the first ``*.json`` with a
    ``model_id``; the shipped fused ``sface_dlib_fused.json`` in the default directory), or
    the card file ``directory`` names (``models/sface_2021dec.json``, or ``sface`` /
    ``accurate``: :data:`faceapp.paths.NAMED_MODELS`)."""
    root, named = model_dir(directory), model_card_file(directory)
    if named is not None:
        if not named.is_file():
            raise ModelError(f"model card not found: {named}")
        candidates = [named]
    elif root.is_file():
        raise ModelError(f"{root} is not a model directory nor a model card (.json)")
    elif not root.is_dir():
        raise ModelError(f"model directory not found: {root}")
    else:
        candidates = [root / DEFAULT_CARD] if (root / DEFAULT_CARD).is_file() else sorted(root.glob("*.json"))
    unreadable = []
    for path in candidates:
        try:
            if not path.is_file():  # a FIFO would block, a device never end
                raise OSError(f"{path.name} is not a regular file")
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:
            logger.debug("not a model card: %s (%s)", path, error)
            unreadable.append(f"{path.name}: {error}")
            continue
        if isinstance(data, dict) and "model_id" in data:
            break
    else:
        detail = f" (unreadable: {'; '.join(unreadable)})" if unreadable else ""
        raise ModelError(f"no model card (*.json with a model_id) in {root}{detail}")
    try:
        thresholds = data["thresholds"]
        presets = {str(k): float(v) for k, v in thresholds["presets"].items()}
        members = tuple(
            EmbeddingCard(directory=root, model_id=f"{data['model_id']}:{m['architecture']}", architecture=str(m["architecture"]),
                          weights=root / m["weights"], weights_sha256=m.get("weights_sha256"),
                          embedding_dim=int(m["embedding_dim"]), threshold_presets=presets,
                          default_preset=str(thresholds["default"]), license=str(m.get("license", "not stated")))
            for m in data.get("members", ()))
        card = EmbeddingCard(
            directory=root,
            model_id=str(data["model_id"]),
            architecture=str(data.get("architecture", "sface")),
            weights=root / data["weights"] if "weights" in data else members[0].weights,
            weights_sha256=data.get("weights_sha256") if "weights" in data else members[0].weights_sha256,
            embedding_dim=int(data["embedding_dim"]),
            members=members,
            fusion_weights=tuple(float(m["fusion_weight"]) for m in data.get("members", ())),
            threshold_presets=presets,
            default_preset=str(thresholds["default"]),
            license=str(data.get("license", "not stated")),
            open_set=data.get("open_set") if isinstance(data.get("open_set"), dict) else None,
            visitors=data.get("visitors") if isinstance(data.get("visitors"), dict) else None,
            same_face=float(data["tracking"]["same_face"]) if isinstance(data.get("tracking"), dict) else None,
            near_duplicate=float(data["near_duplicate"]["similarity"]) if isinstance(data.get("near_duplicate"), dict) else None,
            card_file=path,
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:  # e.g. presets not a mapping
        raise ModelError(f"model card {path} is malformed: {error!r}") from None
    if not 0 < card.embedding_dim <= 65536:
        raise ModelError(f"model card {path}: embedding_dim must be between 1 and 65536, got {card.embedding_dim}")
    if not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in presets.values()):
        raise ModelError(f"model card {path}: threshold presets must be similarities between -1 and 1")
    if (card.architecture == "ensemble") != card.is_ensemble:
        raise ModelError(f"model card {path}: an 'ensemble' architecture lists its members, and only it does")
    if card.is_ensemble and (card.same_face is None or not card.open_set or not (card.visitors or {}).get("join")):
        raise ModelError(f"model card {path}: an ensemble's similarities are on their own scale: it needs its open_set, "
                         "tracking.same_face and visitors.join (faceapp model calibrate --model DIR --lfw DATA_DIR)")
    if card.default_preset not in presets:
        raise ModelError(f"model card {path}: default preset {card.default_preset!r} is not defined")
    return card


def shipped_card(model_id: str | None) -> tuple[str, EmbeddingCard] | None:
    """``(name, card)`` of the shipped model with this id (``sface``, ``accurate``:
    :data:`faceapp.paths.NAMED_MODELS`), or None."""
    from faceapp.paths import NAMED_MODELS

    for name in NAMED_MODELS:
        try:
            card = load_card(name)
        except ModelError:
            continue
        if card.model_id == model_id:
            return name, card
    return None


def model_option(model_id: str) -> str:
    """What to pass as ``--model`` for a model id: the name of a shipped model, else its model directory."""
    found = shipped_card(model_id)
    return found[0] if found else f"the directory of model {model_id!r}"


def model_advice(gallery_model: str, wanted: str) -> str:
    """How to go on when a gallery of ``gallery_model`` meets ``wanted``'s embeddings."""
    return (f"use the gallery's model (--model {model_option(gallery_model)}), or move the gallery to "
            f"{wanted!r} first (faceapp gallery reembed --model {model_option(wanted)})")


def card_for_gallery(choice: str | os.PathLike | None, gallery: Any) -> EmbeddingCard:
    """The card of the model ``choice`` names (see :func:`load_card`). When no model was
    chosen (no ``--model``, no ``$FACEAPP_MODELS``) and ``gallery`` (anything with
    ``model_id()``, e.g. a :class:`~faceapp.storage.gallery.Gallery`, or None) was made by
    another shipped model (SFace alone, before the fused model became the default), that
    model is used instead, with a warning: the gallery keeps working, and ``faceapp gallery
    reembed`` moves it to the default."""
    from faceapp.paths import model_chosen

    card = load_card(choice)
    if gallery is None or model_chosen(choice):
        return card
    stored = gallery.model_id()
    if stored is None or stored == card.model_id:
        return card
    found = shipped_card(stored)
    if found is not None:
        name, other = found
        logger.warning("the gallery %s was made by model %r: using it (--model %s); 'faceapp gallery reembed' "
                       "moves the gallery to the default model %r", getattr(gallery, "path", ""), stored, name, card.model_id)
        return other
    return card
