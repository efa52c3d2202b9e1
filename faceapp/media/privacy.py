"""Privacy policy: embeddings-only mode and face blurring for recordings and snapshots.

Core only (numpy + OpenCV, no Qt). The policy has two parts:

- **Embeddings-only mode** belongs to the gallery (``Gallery.embeddings_only``, stored in
  the file, enforced by the gallery itself: thumbnails are dropped on insert). Anything
  else that would write a face image to disk (snapshots, recordings) asks
  :func:`check_image_write` first; in embeddings-only mode only output whose every face is
  blurred (``blur="all"``) may be written.
- **Blurring** (:func:`blur_faces`) pixelates and then smooths each chosen face box (grown
  by a margin), so the face cannot be recovered by sharpening; ``"unknown"`` blurs every
  face that was not recognised as an enrolled person, ``"all"`` every face.

:func:`render_output` is the one call recordings and snapshots use: blur, then draw the
boxes and names (names of blurred unknown faces are "Unknown" anyway).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceapp.errors import FaceAppError
from faceapp.types import FrameResult

__all__ = [
    "BLUR_CHOICES",
    "BlurMode",
    "PrivacyError",
    "PrivacyPolicy",
    "blur_faces",
    "check_image_write",
    "initials",
    "render_output",
]

logger = logging.getLogger(__name__)

BlurMode = Literal["none", "unknown", "all"]
BLUR_CHOICES: tuple[str, ...] = ("none", "unknown", "all")
BOX_MARGIN = 0.25  # grow each face box by this fraction of its size on every side
MOSAIC_CELLS = 8  # the face becomes at most this many blocks across


class PrivacyError(FaceAppError):
    """A write that the privacy settings forbid (e.g. a face image in embeddings-only mode)."""


@dataclass(frozen=True)
class PrivacyPolicy:
    """What may be written. ``embeddings_only`` comes from the gallery; ``blur`` from the
    user's settings (or ``--blur``)."""

    embeddings_only: bool = False
    blur: BlurMode = "none"

    def __post_init__(self) -> None:
        normalize_blur(self.blur)

    @classmethod
    def for_gallery(cls, gallery, blur: str | None = None) -> PrivacyPolicy:
        """The policy of an open :class:`faceapp.storage.gallery.Gallery` (or None: no gallery)."""
        only = bool(gallery is not None and gallery.embeddings_only)
        return cls(only, normalize_blur(blur))


def normalize_blur(value: str | None) -> BlurMode:
    """None -> "none"; ValueError for anything not in BLUR_CHOICES."""
    if value is None:
        return "none"
    if value not in BLUR_CHOICES:
        raise ValueError(f"blur must be one of {', '.join(BLUR_CHOICES)}, not {value!r}")
    return value  # type: ignore[return-value]


def check_image_write(policy: PrivacyPolicy, what: str = "a snapshot") -> None:
    """Raise PrivacyError if ``policy`` forbids writing ``what`` (an image with faces)."""
    if policy.embeddings_only and policy.blur != "all":
        raise PrivacyError(
            f"embeddings-only mode is on: {what} with faces is not written to disk "
            "(blur all faces to record anyway, or turn embeddings-only mode off)"
        )


def _face_boxes(result: FrameResult, which: BlurMode, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    height, width = shape[:2]
    boxes = []
    for face in result.faces:
        if which == "none" or (which == "unknown" and face.match.name):
            continue
        x, y, w, h = (float(v) for v in face.detection.box)
        if not all(np.isfinite((x, y, w, h))) or w <= 0 or h <= 0:
            continue
        mx, my = w * BOX_MARGIN, h * BOX_MARGIN
        x0, y0 = max(0, int(np.floor(x - mx))), max(0, int(np.floor(y - my)))
        x1, y1 = min(width, int(np.ceil(x + w + mx))), min(height, int(np.ceil(y + h + my)))
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    return boxes


def blur_faces(image: np.ndarray, result: FrameResult, which: str | None = "unknown") -> np.ndarray:
    """A copy of ``image`` (BGR uint8 (H, W, 3)) with the chosen faces made unrecognisable.

    ``which``: "unknown" (faces with no enrolled match), "all", or "none"/None (a plain copy).
    """
    import cv2

    mode = normalize_blur(which)
    out = image.copy()
    for x0, y0, x1, y1 in _face_boxes(result, mode, image.shape):
        region = out[y0:y1, x0:x1]
        h, w = region.shape[:2]
        cells = max(1, min(MOSAIC_CELLS, w, h))
        small = cv2.resize(region, (cells, max(1, round(cells * h / w))), interpolation=cv2.INTER_AREA)
        mosaic = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        k = max(3, (min(w, h) // 4) | 1)
        out[y0:y1, x0:x1] = cv2.GaussianBlur(mosaic, (k, k), 0)
    return out


def render_output(image: np.ndarray, result: FrameResult, blur: str | None = None, draw: bool = True) -> np.ndarray:
    """The frame as recordings and snapshots write it: faces blurred per ``blur``, then
    (with ``draw``) boxes and names drawn. Returns a new BGR uint8 image."""
    from faceapp.media.overlay import draw_results

    out = blur_faces(image, result, blur) if normalize_blur(blur) != "none" else image
    return draw_results(out, result) if draw else out.copy()


def initials(name: str, max_letters: int = 2) -> str:
    """What the gallery dialog shows instead of a thumbnail: "Ada Lovelace" -> "AL",
    "madonna" -> "M", "" -> "?". Letters are upper-cased; works for any script."""
    letters = [word[0] for word in str(name).split() if word and word[0].isalnum()]
    if not letters:
        letters = [c for c in str(name) if c.isalnum()][:1]
    chosen = letters[:1] + (letters[1:][-(max_letters - 1) :] if max_letters > 1 else [])
    return "".join(chosen).upper() or "?"
