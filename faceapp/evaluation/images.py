"""Embedding a dataset's images through the app's own pipeline (read, find the face,
align, embed in batches, with flip fusion if asked), for verification and identification."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.embedding.flip import embed_faces, embed_plain_and_mirror, fuse
from faceapp.errors import FaceAppError
from faceapp.vision.alignment import align_face
from faceapp.vision.dlib_align import dlib_chip
from faceapp.vision.faces import FacePolicy, find_face

logger = logging.getLogger(__name__)


class DatasetError(FaceAppError):
    """An evaluation dataset (folder, pairs file, image) is missing or malformed."""



@dataclass(frozen=True)
class ImageEmbeddings:
    """Embeddings of a list of images, one row per image, in the order given.

    Attributes:
        paths: the images.
        plain: float32 ``(N, D)`` unit rows (zeros where ``usable`` is False).
        flip: float32 ``(N, D)`` flip-fused unit rows, or None when not computed.
        detected: bool ``(N,)``, a face was detected.
        usable: bool ``(N,)``, the row is a real embedding (detected, or the centre
            fallback was applied).
        multiple: how many images had more than one detected face.
        seconds: wall time of the whole computation.
    """

    paths: tuple[Path, ...]
    plain: np.ndarray
    flip: np.ndarray | None
    detected: np.ndarray
    usable: np.ndarray
    multiple: int
    seconds: float

    def no_face(self) -> list[Path]:
        """The images without a detected face, in order."""
        return [p for p, found in zip(self.paths, self.detected) if not found]


def embed_images(
    recognizer: Any,
    paths: Sequence[str | os.PathLike],
    policy: FacePolicy,
    *,
    flip: bool = True,
    batch_size: int = 64,
    progress: bool = False,
    description: str = "embedding",
) -> ImageEmbeddings:
    """Read, detect, align and embed each image (pass each image once).

    ``recognizer``: a :class:`~faceapp.recognition.pipeline.Recognizer` (its ``detect`` and
    ``embedder`` are used). Faces are embedded ``batch_size`` at a time; with ``flip``
    the mirror images go in the same batches. A progress bar on stderr with ``progress``.
    Unreadable images raise :class:`~faceapp.errors.ImageReadError`.
    """
    from faceapp.media.imageio import read_image

    policy.validate()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    paths = tuple(Path(p) for p in paths)
    count, dim = len(paths), recognizer.embedder.dim
    plain = np.zeros((count, dim), np.float32)
    fused = np.zeros((count, dim), np.float32) if flip else None
    detected = np.zeros(count, bool)
    usable = np.zeros(count, bool)
    multiple = 0
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count, desc=description, unit="image", leave=False)
    try:
        needs_chip = recognizer.needs_chip
        for first in range(0, count, batch_size):
            rows, faces, chips = [], [], []
            for row in range(first, min(first + batch_size, count)):
                image = read_image(paths[row])
                found = find_face(recognizer.detect, image, policy)
                detected[row] = found.detected
                multiple += found.face_count > 1
                if found.landmarks is None:
                    logger.info("%s: no face found; %s", paths[row].name, policy.no_face)
                    continue
                if not found.detected:
                    logger.info("%s: no face found; centre alignment", paths[row].name)
                rows.append(row)
                faces.append(align_face(image, found.landmarks))
                if needs_chip:
                    chips.append(dlib_chip(image, found.landmarks))
            if faces:
                stacked = np.stack(faces)
                stacked_chips = np.stack(chips) if needs_chip else None
                if flip:
                    embeddings, mirrored = embed_plain_and_mirror(recognizer.embedder, stacked, stacked_chips)
                    fused[rows] = fuse(embeddings, mirrored)
                else:
                    embeddings = embed_faces(recognizer.embedder, stacked, stacked_chips)
                plain[rows] = embeddings
                usable[rows] = True
            if bar is not None:
                bar.update(min(batch_size, count - first))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    logger.info("embedded %d images in %.1f s (%d without a detected face)", count, seconds, int(count - detected.sum()))
    return ImageEmbeddings(paths, plain, fused, detected, usable, multiple, seconds)
