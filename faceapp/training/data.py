"""Training data: scan a dataset, find and align every face once (cached), split by
person, and feed batches through ``tf.data`` with augmentation.

Layouts (see :func:`faceapp.evaluation.ident.discover_people`): ``DATA_DIR/NAME/*.jpg``
(one folder per person) or flat ``NAME_NNNN.jpg`` files (LFW: ``DATA_DIR/images/``).

Faces are found with the app's own YuNet detector and aligned with the app's own
ArcFace 5-point alignment, exactly as at recognition time; images whose shorter side
is under ``DataConfig.min_short_side`` are searched as ``faceapp eval lfw`` does (the
default :class:`~faceapp.vision.faces.FacePolicy`: also upscaled, the face nearest
the centre), larger photos at their own size. The aligned crops (BGR
uint8 112x112) are cached in one ``.npz`` per selection of files, keyed by the dataset
path and every file's size and modification time, so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from faceapp.errors import FaceAppError
from faceapp.training.config import DataConfig, TrainConfig

logger = logging.getLogger(__name__)

#: Bump when detection/alignment changes, so cached crops are rebuilt.
CACHE_VERSION = 2
CROP = 112


class TrainingDataError(FaceAppError):
    """The training dataset is missing, too small, or has no usable faces."""


# --------------------------------------------------------------------------- selection
def people_from_pairs(pairs_file: str | os.PathLike, folds: Sequence[int]) -> tuple[str, ...]:
    """Everyone named in the given 1-based ``folds`` of an LFW ``pairs.txt``, sorted."""
    from faceapp.evaluation.ident import person_of
    from faceapp.evaluation.lfw_pairs import read_pairs

    try:
        pairs = read_pairs(pairs_file)
    except (OSError, ValueError) as error:
        raise TrainingDataError(f"cannot read pairs file {pairs_file}: {error}") from None
    wanted = {fold - 1 for fold in folds}
    names = {person_of(Path(name)) for pair in pairs if pair.fold in wanted for name in (pair.left, pair.right)}
    return tuple(sorted(names))


def parse_folds(text: str) -> tuple[int, ...]:
    """``"1-8"`` or ``"1,3,5-6"`` -> ``(1, 2, ...)``; ValueError if malformed."""
    folds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"folds must look like 1-8 or 1,2,5, got {text!r}") from None
        if first < 1 or last < first:
            raise ValueError(f"bad fold range {part!r}")
        folds.extend(range(first, last + 1))
    return tuple(sorted(set(folds)))


def select_images(config: DataConfig, *, min_people: int = 4) -> dict[str, list[Path]]:
    """The people and image files the config selects (before any face is found);
    TrainingDataError when fewer than ``min_people`` are left (training needs 4)."""
    from faceapp.evaluation.ident import discover_people
    from faceapp.evaluation.images import DatasetError

    try:
        people = discover_people(config.data_dir)
    except DatasetError as error:
        raise TrainingDataError(str(error)) from None
    if config.people is not None:
        wanted = set(config.people)
        people = {name: paths for name, paths in people.items() if name in wanted}
    people = {name: paths for name, paths in people.items() if len(paths) >= config.min_images}
    if config.max_people is not None:
        people = dict(list(people.items())[: config.max_people])
    if config.max_images_per_person is not None:
        people = {name: paths[: config.max_images_per_person] for name, paths in people.items()}
    if len(people) < min_people:
        raise TrainingDataError(
            f"{config.data_dir}: only {len(people)} people with >= {config.min_images} images were selected; "
            + ("training needs at least 4 (2 to train on, 2 to validate on)" if min_people == 4 else f"at least {min_people} needed")
        )
    return people


# --------------------------------------------------------------------------- faces
@dataclass(frozen=True)
class FaceSet:
    """Aligned faces and who they are.

    Attributes:
        images: BGR uint8 ``(N, 112, 112, 3)`` crops aligned to the ArcFace template.
        labels: int32 ``(N,)`` index into ``names``.
        names: the people, in label order.
        paths: the source image of each row.
        detected: bool ``(N,)``: False where the fixed centre alignment was used.
    """

    images: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    paths: tuple[str, ...]
    detected: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, people: Sequence[str]) -> FaceSet:
        """Only these people, relabelled ``0..len(people)-1`` in the order given."""
        index = {name: i for i, name in enumerate(self.names)}
        relabel = np.full(len(self.names), -1, np.int32)
        for new, name in enumerate(people):
            relabel[index[name]] = new
        rows = np.flatnonzero(relabel[self.labels] >= 0)
        return FaceSet(
            self.images[rows], relabel[self.labels[rows]], tuple(people),
            tuple(self.paths[i] for i in rows), self.detected[rows],
        )

    def counts(self) -> np.ndarray:
        """Images per person, int64 ``(len(names),)``."""
        return np.bincount(self.labels, minlength=len(self.names))


@dataclass(frozen=True)
class LoadedFaces:
    """The result of :func:`load_faces`: the usable faces and the images without one."""

    faces: FaceSet
    no_face: tuple[str, ...]  # images where no face was detected (skipped or centre-aligned)
    dropped_people: tuple[str, ...]  # left with fewer than min_images usable faces
    cache_file: Path | None

    def summary(self) -> dict:
        counts = self.faces.counts()
        return {
            "people": len(self.faces.names),
            "images": len(self.faces),
            "images_per_person": {"min": int(counts.min()), "median": float(np.median(counts)), "max": int(counts.max())},
            "no_face_images": len(self.no_face),
            "dropped_people": len(self.dropped_people),
        }


def _cache_key(config: DataConfig, people: dict[str, list[Path]], detection) -> str:
    digest = hashlib.sha256()
    detector = [detection.detector.score_threshold, detection.detector.nms_threshold, detection.detector.min_face_size]
    digest.update(json.dumps([CACHE_VERSION, str(Path(config.data_dir).resolve()), config.no_face, config.min_short_side, detector]).encode())
    for name, paths in people.items():
        for path in paths:
            stat = path.stat()
            digest.update(f"{name}\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def default_cache_dir() -> Path:
    from faceapp.paths import cache_dir

    return cache_dir() / "training-crops"


def face_aligner(config: DataConfig, detection):
    """The one place training finds and aligns a face: ``align(image)`` takes a BGR
    uint8 ``(H, W, 3)`` image and returns ``(crop, found)``: the BGR uint8 ``(112, 112, 3)``
    aligned crop (None when no face and ``config.no_face == "skip"``) and the
    :class:`~faceapp.vision.faces.FoundFace`. ``detection``: the
    :class:`~faceapp.recognition.pipeline.PipelineConfig` whose detector is built."""
    from faceapp.recognition.pipeline import build_detector
    from faceapp.vision.alignment import align_face
    from faceapp.vision.faces import FacePolicy, find_face

    detector = build_detector(detection)
    # Small images: exactly what `faceapp eval lfw` does (it upscales them for YuNet);
    # large photos: detection at their own size only.
    small = FacePolicy(no_face="centre" if config.no_face == "centre" else "skip")
    large = replace(small, scales=(1.0,)) if hasattr(small, "scales") else small

    def align(image: np.ndarray):
        found = find_face(detector.detect, image, small if min(image.shape[:2]) < config.min_short_side else large)
        crop = align_face(image, found.landmarks) if found.landmarks is not None else None
        return crop, found

    return align


def _detect_and_align(people: dict[str, list[Path]], config: DataConfig, detection, progress: bool):
    """Run YuNet + alignment on every selected image; returns arrays for the cache.
    ``detection``: the :class:`~faceapp.recognition.pipeline.PipelineConfig` of the detector."""
    from faceapp.media.imageio import read_image

    align = face_aligner(config, detection)
    total = sum(len(paths) for paths in people.values())
    crops = np.zeros((total, CROP, CROP, 3), np.uint8)
    labels = np.zeros(total, np.int32)
    detected = np.zeros(total, bool)
    usable = np.zeros(total, bool)
    paths_out: list[str] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="finding faces", unit="image", leave=False)
    row = 0
    for label, (name, paths) in enumerate(people.items()):
        for path in paths:
            crop, found = align(read_image(path))
            labels[row], detected[row] = label, found.detected
            if crop is not None:
                crops[row] = crop
                usable[row] = True
            paths_out.append(str(path))
            row += 1
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return crops, labels, detected, usable, np.array(paths_out)


def load_faces(config: DataConfig, *, model_dir=None, progress: bool = False, detection=None) -> LoadedFaces:
    """Select the images, find and align their faces (or read them from the cache).

    ``detection``: the pipeline configuration whose detector finds the faces (default:
    the default detector of ``model_dir``), the same builder the app uses."""
    from faceapp.recognition.pipeline import PipelineConfig

    config.validate()
    detection = detection or PipelineConfig(model_dir=model_dir)
    people = select_images(config)
    cache_root = Path(config.cache_dir) if config.cache_dir is not None else default_cache_dir()
    cache_file = cache_root / f"crops-{_cache_key(config, people, detection)}.npz"
    if cache_file.is_file():
        with np.load(cache_file) as data:
            crops, labels, detected, usable, paths = (data[k] for k in ("crops", "labels", "detected", "usable", "paths"))
        logger.info("aligned faces read from the cache %s", cache_file)
    else:
        crops, labels, detected, usable, paths = _detect_and_align(people, config, detection, progress)
        try:
            cache_root.mkdir(parents=True, exist_ok=True)
            temporary = cache_file.with_suffix(".tmp.npz")
            np.savez(temporary, crops=crops, labels=labels, detected=detected, usable=usable, paths=paths)
            os.replace(temporary, cache_file)
        except OSError as error:
            logger.warning("cannot cache aligned faces in %s: %s", cache_root, error)
            cache_file = None
    names = tuple(people)
    no_face = tuple(str(p) for p, found in zip(paths, detected) if not found)
    for path in no_face:
        logger.info("no face detected in %s (%s)", path, "centre alignment" if config.no_face == "centre" else "skipped")
    if no_face:
        logger.warning("%d of %d images have no detected face (%s); see the training report", len(no_face), len(paths),
                       "centre-aligned" if config.no_face == "centre" else "left out")
    everything = FaceSet(crops[usable], labels[usable], names, tuple(str(p) for p in paths[usable]), detected[usable])
    counts = everything.counts()
    kept = [name for name, count in zip(names, counts) if count >= config.min_images]
    dropped = tuple(name for name, count in zip(names, counts) if count < config.min_images)
    if len(kept) < 4:
        raise TrainingDataError(f"only {len(kept)} people have >= {config.min_images} usable faces; training needs at least 4")
    return LoadedFaces(everything.subset(kept), no_face, dropped, cache_file)


# --------------------------------------------------------------------------- the split
def split_people(names: Sequence[str], val_fraction: float, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split people (never images) into train and validation, at least 2 on each side.

    Returns ``(train_names, val_names)``, each sorted; they are disjoint by construction.
    """
    names = sorted(names)
    if len(names) < 4:
        raise ValueError(f"need at least 4 people to split, got {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    val_count = min(len(names) - 2, max(2, round(len(names) * val_fraction)))
    val = tuple(sorted(names[i] for i in order[:val_count]))
    train = tuple(sorted(names[i] for i in order[val_count:]))
    return train, val


def kfold_people(names: Sequence[str], folds: int, seed: int) -> list[tuple[str, ...]]:
    """Split people into ``folds`` disjoint groups of near-equal size (each >= 2 people)."""
    names = sorted(names)
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if len(names) < 2 * folds:
        raise ValueError(f"{folds} folds need at least {2 * folds} people, got {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    return [tuple(sorted(names[i] for i in order[k::folds])) for k in range(folds)]


def verification_pairs(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw about ``count`` distinct pairs, half same-person, half different-person.

    ``labels``: int ``(N,)``. Returns ``(left (n,), right (n,), same (n,) bool)`` row
    indices into ``labels``; fewer same pairs when the people have few images.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    same_pool = [(i, j) for person in np.unique(labels) for rows in [np.flatnonzero(labels == person)]
                 for a, i in enumerate(rows) for j in rows[a + 1:]]
    if not same_pool:
        raise ValueError("no person has two images: no same-person pair can be drawn")
    if len(np.unique(labels)) < 2:
        raise ValueError("verification pairs need at least two people")
    same_count = min(count // 2, len(same_pool))
    chosen = rng.choice(len(same_pool), same_count, replace=False)
    same = [same_pool[k] for k in chosen]
    different: set[tuple[int, int]] = set()
    attempts = 0
    while len(different) < same_count and attempts < 100 * count:
        i, j = rng.integers(0, len(labels), 2)
        attempts += 1
        if labels[i] != labels[j]:
            different.add((int(min(i, j)), int(max(i, j))))
    pairs = same + sorted(different)
    left = np.array([p[0] for p in pairs], np.int64)
    right = np.array([p[1] for p in pairs], np.int64)
    is_same = np.array([True] * len(same) + [False] * len(different))
    return left, right, is_same


# --------------------------------------------------------------------------- tf.data
def _gaussian_kernel(tf, sigma):
    radius = 2
    x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
    g = tf.exp(-(x * x) / (2.0 * sigma * sigma))
    g = g / tf.reduce_sum(g)
    kernel = g[:, None] * g[None, :]
    return tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])


def augment_fn(config, seed: int):
    """A ``tf.function``-friendly map: RGB float32 ``(112, 112, 3)`` in [0, 255] -> same,
    randomly mirrored, zoomed/shifted/rotated, brightened/contrasted and blurred."""
    import tensorflow as tf

    centre = (CROP - 1) / 2.0

    def augment(image):
        if config.mirror:
            image = tf.cond(tf.random.uniform(()) < 0.5, lambda: tf.reverse(image, axis=[1]), lambda: image)
        if config.scale or config.shift or config.rotation:
            angle = tf.random.uniform((), -config.rotation, config.rotation) * (math.pi / 180.0)
            zoom = tf.random.uniform((), 1.0 - config.scale, 1.0 + config.scale)
            tx = tf.random.uniform((), -config.shift, config.shift) * CROP
            ty = tf.random.uniform((), -config.shift, config.shift) * CROP
            cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
            # Output pixel -> input pixel (inverse of: rotate, zoom about the centre, shift).
            transform = tf.stack([
                cos, sin, centre - cos * (centre + tx) - sin * (centre + ty),
                -sin, cos, centre + sin * (centre + tx) - cos * (centre + ty),
                0.0, 0.0,
            ])[None, :]
            image = tf.raw_ops.ImageProjectiveTransformV3(
                images=image[None], transforms=transform, output_shape=[CROP, CROP],
                fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT",
            )[0]
        if config.brightness:
            image = image + tf.random.uniform((), -config.brightness, config.brightness)
        if config.contrast:
            mean = tf.reduce_mean(image)
            image = (image - mean) * tf.random.uniform((), 1.0 - config.contrast, 1.0 + config.contrast) + mean
        if config.blur:
            def blur(x):
                kernel = _gaussian_kernel(tf, tf.random.uniform((), 0.5, 1.5))
                return tf.nn.depthwise_conv2d(x[None], kernel, [1, 1, 1, 1], "SAME")[0]

            image = tf.cond(tf.random.uniform(()) < config.blur, lambda: blur(image), lambda: image)
        return tf.clip_by_value(image, 0.0, 255.0)

    del seed
    return augment


def class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Inverse-frequency weights, float32 ``(classes,)``, mean 1 over the images."""
    return count_weights(np.bincount(labels, minlength=classes)[:classes])


def count_weights(counts: np.ndarray) -> np.ndarray:
    """:func:`class_weights` from the images per person alone (``counts``, int ``(classes,)``):
    ``images / (classes * count)``, float32, mean 1 over the images (the streamed
    ``--from-shards`` path knows the counts, not the labels)."""
    counts = np.asarray(counts).astype(np.float64)
    weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
    return weights.astype(np.float32)


def train_dataset(faces: FaceSet, config: TrainConfig, seed: int):
    """The infinite training stream: batches of ``({"face": (B, 112, 112, 3) RGB float32,
    "label": (B,) int32}, label (B,), sample weight (B,) float32)``.

    ``config.balance == "sampling"``: each example draws a person uniformly, then one of
    their images; otherwise the images are shuffled each pass. ``"weights"``: the
    sample weight is the inverse frequency of the person (else 1). Parallel map,
    prefetch; augmentation per :class:`~faceapp.training.config.AugmentConfig`.
    """
    import tensorflow as tf

    classes = len(faces.names)
    order = np.argsort(faces.labels, kind="stable")
    images = tf.constant(faces.images[order][..., ::-1])  # RGB uint8
    labels_np = faces.labels[order].astype(np.int32)
    labels = tf.constant(labels_np)
    counts = np.bincount(labels_np, minlength=classes)
    weights = tf.constant(class_weights(labels_np, classes) if config.balance == "weights" else np.ones(classes, np.float32))
    if config.balance == "sampling":
        offsets = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))
        sizes = tf.constant(counts.astype(np.int64))
        indices = tf.data.Dataset.random(seed=seed).batch(2).map(
            lambda r: offsets[tf.math.abs(r[0]) % classes] + tf.math.abs(r[1]) % sizes[tf.math.abs(r[0]) % classes]
        )
    else:
        indices = tf.data.Dataset.range(len(labels_np)).shuffle(len(labels_np), seed=seed, reshuffle_each_iteration=True).repeat()
    augment = augment_fn(config.augment, seed) if config.augment.enabled else None

    def load(index):
        image = tf.cast(tf.gather(images, index), tf.float32)
        if augment is not None:
            image = augment(image)
        label = tf.gather(labels, index)
        return {"face": image, "label": label}, label, tf.gather(weights, label)

    return (
        indices.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def steps_per_epoch(faces: FaceSet, config: TrainConfig) -> int:
    if config.steps_per_epoch is not None:
        return config.steps_per_epoch
    return max(1, len(faces) // config.batch_size)
