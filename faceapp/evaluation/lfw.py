"""``faceapp eval lfw``: LFW's 10-fold verification protocol run through the whole pipeline.

Every image that ``pairs.txt`` names is read once, its face found by YuNet, aligned to the
ArcFace template and embedded by SFace in batches (and, with flip fusion, its mirror
image too); a pair's score is the cosine similarity of its two embeddings. The report
gives the k-fold accuracy (each fold's threshold chosen on the other folds), ROC AUC,
EER, TAR at FAR 1e-2 and 1e-3 and the best single threshold, for plain embeddings and
for flip-fused ones, and proposes threshold presets from them.

How a face is found in a dataset image is a :class:`FacePolicy`: detect on the image
at 1x and 2x (LFW's 150x150 crops are small for YuNet) and average the two landmark
estimates, keep the face closest to the image
centre (LFW's convention: the centre face is the subject) and, where no face is found,
either fall back to fixed landmarks at the average position of LFW faces (a centre
alignment suited to LFW's crop) or reject the image. Fallbacks are counted and named in
the report, never silent.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.embedding.flip import embed_plain_and_mirror, embed_with_flip, fuse
from faceapp.errors import FaceAppError
from faceapp.evaluation.lfw_pairs import Pair, pair_arrays, read_pairs
from faceapp.evaluation.metrics import (
    KFoldResult,
    RocCurve,
    best_threshold,
    equal_error_rate,
    kfold_accuracy,
    roc,
    tar_at_far,
)
from faceapp.types import Detection
from faceapp.vision.alignment import align_face

logger = logging.getLogger(__name__)

__all__ = [
    "LFW_CENTRE_LANDMARKS",
    "DatasetError",
    "FacePolicy",
    "FoundFace",
    "ImageEmbeddings",
    "LfwDataset",
    "VerificationResult",
    "box_iou",
    "centre_landmarks",
    "default_lfw_dir",
    "detect_at_scale",
    "embed_images",
    "embed_plain_and_mirror",
    "embed_with_flip",
    "find_face",
    "format_lfw_table",
    "fuse",
    "load_lfw",
    "pair_scores",
    "pick_detection",
    "plot_verification_roc",
    "run_lfw",
    "verification_result",
    "write_pair_scores",
    "write_report",
]

#: FAR targets reported with their TAR and threshold.
FAR_TARGETS = (1e-2, 1e-3)
PICKS = ("centre", "largest")
NO_FACE_POLICIES = ("centre", "reject", "skip")

#: Where YuNet puts the five landmarks (right eye, left eye, nose, right and left mouth
#: corners; ``(x, y)``) of the subject of LFW's 150x150 deep-funneled centre crops, as
#: fractions of the image width and height: the mean over the 7,701 images of the shared
#: set (detected at 2x). The fallback alignment for an image with no detected face.
LFW_CENTRE_LANDMARKS = np.array(
    [
        [54.47, 62.33],
        [96.53, 61.38],
        [75.96, 87.90],
        [58.60, 108.25],
        [94.08, 107.46],
    ],
    dtype=np.float64,
) / 150.0


class DatasetError(FaceAppError):
    """An evaluation dataset (folder, pairs file, image) is missing or malformed."""


def default_lfw_dir() -> Path:
    """``$FACEAPP_LFW_DIR``, else ``<repository>/../shared/data/lfw``."""
    from faceapp.paths import lfw_dir

    return lfw_dir()


# --------------------------------------------------------------------------- finding faces
@dataclass(frozen=True)
class FacePolicy:
    """How the face of a dataset image is found.

    Attributes:
        scales: the detector runs on the image resized by each of these factors (each
            in [1, 8]); the subject's landmarks, mapped back to the original pixels, are
            averaged over the scales that find it (two estimates of the landmarks are
            less noisy than one), and the face is aligned in the original image.
        pick: which of several detected faces is the subject: ``"centre"`` (box centre
            nearest the image centre, LFW's convention) or ``"largest"`` (box area).
            It is picked at the first scale that finds a face; at the other scales the
            detection overlapping it most (IoU >= 0.5) is the same face.
        no_face: what an image without a detected face becomes: ``"centre"`` (aligned
            with :data:`LFW_CENTRE_LANDMARKS` scaled to the image: suits face-centred
            crops), ``"reject"`` (LFW: every pair using it is scored -1, i.e. declared
            "different") or ``"skip"`` (identification: the image is left out).
    """

    scales: tuple[float, ...] = (1.0, 2.0)
    pick: str = "centre"
    no_face: str = "centre"

    def validate(self) -> None:
        if not self.scales or not all(math.isfinite(s) and 1.0 <= s <= 8.0 for s in self.scales):
            raise ValueError(f"scales must be one or more factors in [1, 8], got {self.scales}")
        if self.pick not in PICKS:
            raise ValueError(f"pick must be one of {', '.join(PICKS)}, got {self.pick!r}")
        if self.no_face not in NO_FACE_POLICIES:
            raise ValueError(f"no_face must be one of {', '.join(NO_FACE_POLICIES)}, got {self.no_face!r}")

    def describe(self) -> str:
        """One sentence for reports."""
        scales = " and ".join(f"{s:g}x" for s in self.scales)
        subject = "the face nearest the image centre" if self.pick == "centre" else "the largest face"
        found = f"YuNet on the image at {scales}, {subject} is the subject"
        if len(self.scales) > 1:
            found += ", its landmarks averaged over the scales that find it"
        fallback = {
            "centre": "images without a detected face are aligned with fixed landmarks "
            "(the mean LFW landmark positions scaled to the image: a centre alignment)",
            "reject": "pairs with an image without a detected face are scored -1 (declared different)",
            "skip": "images without a detected face are left out",
        }[self.no_face]
        return f"{found}; {fallback}"

    def to_json(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "pick": self.pick, "no_face": self.no_face, "description": self.describe()}


@dataclass(frozen=True)
class FoundFace:
    """The subject's face in one image.

    Attributes:
        landmarks: float32 ``(5, 2)`` ``(x, y)`` in the original image's pixels, or
            None when no face was detected and the policy does not fall back.
        detected: whether the detector found it (False: fallback or nothing).
        face_count: how many faces the detector found (at the scale that picked the subject).
        score: the detector score of the chosen face (0.0 when not detected).
    """

    landmarks: np.ndarray | None
    detected: bool
    face_count: int
    score: float


def centre_landmarks(width: int, height: int) -> np.ndarray:
    """:data:`LFW_CENTRE_LANDMARKS` in the pixels of a ``width`` x ``height`` image:
    float32 ``(5, 2)``."""
    return (LFW_CENTRE_LANDMARKS * np.array([width, height], np.float64)).astype(np.float32)


def pick_detection(detections: Sequence[Detection], width: int, height: int, pick: str = "centre") -> Detection:
    """The subject among ``detections`` (non-empty) of a ``width`` x ``height`` image:
    the box whose centre is nearest the image centre, or the largest box."""
    if not detections:
        raise ValueError("no detections to pick from")
    if pick == "largest":
        return max(detections, key=lambda d: d.area)
    if pick != "centre":
        raise ValueError(f"pick must be one of {', '.join(PICKS)}, got {pick!r}")
    cx, cy = width / 2.0, height / 2.0
    return min(detections, key=lambda d: math.hypot(d.box[0] + d.box[2] / 2 - cx, d.box[1] + d.box[3] / 2 - cy))


def box_iou(first: tuple[float, float, float, float], second: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes, in ``[0, 1]``."""
    from faceapp.recognition.tracking import iou_matrix

    return float(iou_matrix(np.array([first]), np.array([second]))[0, 0])


def detect_at_scale(detect: Callable[[np.ndarray], list[Detection]], image: np.ndarray, scale: float) -> list[Detection]:
    """``detect`` run on ``image`` resized by ``scale``, boxes and landmarks mapped back
    to ``image``'s pixels (pixel centres: ``x + 0.5 = (x_resized + 0.5) / scale``)."""
    import cv2

    if scale == 1.0:
        return detect(image)
    height, width = image.shape[:2]
    resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
    sx, sy = resized.shape[1] / width, resized.shape[0] / height
    mapped = []
    for d in detect(resized):
        x, y, w, h = d.box
        box = ((x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5, w / sx, h / sy)
        landmarks = ((d.landmarks + 0.5) / np.array([sx, sy], np.float32) - 0.5).astype(np.float32)
        mapped.append(Detection(box=box, landmarks=landmarks, score=d.score))
    return mapped


def find_face(detect: Callable[[np.ndarray], list[Detection]], image: np.ndarray, policy: FacePolicy) -> FoundFace:
    """Find the subject's landmarks in a BGR uint8 ``(H, W, 3)`` image under ``policy``.

    ``detect`` is e.g. ``Recognizer.detect``. The detector's minimum face size applies
    to the resized image.
    """
    height, width = image.shape[:2]
    subject, count, estimates = None, 0, []
    for scale in policy.scales:
        detections = detect_at_scale(detect, image, scale)
        if not detections:
            continue
        if subject is None:
            subject, count = pick_detection(detections, width, height, policy.pick), len(detections)
            estimates.append(subject.landmarks)
            continue
        same = max(detections, key=lambda d: box_iou(d.box, subject.box))
        if box_iou(same.box, subject.box) >= 0.5:
            estimates.append(same.landmarks)
    if subject is not None:
        return FoundFace(np.mean(estimates, axis=0).astype(np.float32), True, count, subject.score)
    if policy.no_face == "centre":
        return FoundFace(centre_landmarks(width, height), False, 0, 0.0)
    return FoundFace(None, False, 0, 0.0)


# --------------------------------------------------------------------------- embedding
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
        for first in range(0, count, batch_size):
            rows, faces = [], []
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
            if faces:
                stacked = np.stack(faces)
                if flip:
                    embeddings, mirrored = embed_plain_and_mirror(recognizer.embedder, stacked)
                    fused[rows] = fuse(embeddings, mirrored)
                else:
                    embeddings = recognizer.embedder.embed(stacked)
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


# --------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class VerificationResult:
    """Every verification figure of one set of pair scores.

    Attributes:
        kfold: the k-fold accuracy (thresholds chosen on the other folds).
        curve: the ROC over all pairs.
        eer, eer_threshold: equal error rate and its (interpolated) threshold.
        tar_at_far: ``{far: (tar, threshold)}`` for each of :data:`FAR_TARGETS`.
        best_threshold, best_accuracy: the single threshold with the best accuracy over
            all pairs, and that accuracy.
        app_threshold, app_accuracy, app_far, app_tar: the app's current threshold and
            its accuracy, false accept rate and true accept rate over all pairs.
    """

    kfold: KFoldResult
    curve: RocCurve
    eer: float
    eer_threshold: float
    tar_at_far: dict[float, tuple[float, float]]
    best_threshold: float
    best_accuracy: float
    app_threshold: float
    app_accuracy: float
    app_far: float
    app_tar: float

    def presets(self) -> dict[str, float]:
        """Threshold presets: strict = FAR 1e-3, balanced = best accuracy, lenient = FAR 1e-2."""
        return {
            "strict": self.tar_at_far[1e-3][1],
            "balanced": self.best_threshold,
            "lenient": self.tar_at_far[1e-2][1],
        }

    def to_json(self) -> dict[str, Any]:
        def number(value: float, digits: int = 6) -> float | None:
            return round(float(value), digits) if math.isfinite(value) else None

        return {
            "accuracy_mean": number(self.kfold.mean),
            "accuracy_std": number(self.kfold.std),
            "fold_accuracies": [number(a) for a in self.kfold.accuracies],
            "fold_thresholds": [number(t) for t in self.kfold.thresholds],
            "fold_threshold_mean": number(float(np.mean(self.kfold.thresholds))),
            "auc": number(self.curve.auc),
            "eer": number(self.eer),
            "eer_threshold": number(self.eer_threshold),
            "tar_at_far": {f"{far:g}": {"tar": number(tar), "threshold": number(threshold)} for far, (tar, threshold) in self.tar_at_far.items()},
            "best_threshold": number(self.best_threshold),
            "best_accuracy": number(self.best_accuracy),
            "app_threshold": number(self.app_threshold),
            "app_accuracy": number(self.app_accuracy),
            "app_far": number(self.app_far),
            "app_tar": number(self.app_tar),
            "presets": {name: number(value, 4) for name, value in self.presets().items()},
        }


def verification_result(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray, app_threshold: float) -> VerificationResult:
    """All verification figures of ``scores`` ``(n,)`` (cosine similarities), ``labels``
    ``(n,)`` bool (True: same person) and ``folds`` ``(n,)`` int."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    threshold, accuracy = best_threshold(scores, labels)
    eer, eer_threshold = equal_error_rate(scores, labels)
    accepted = scores >= app_threshold
    return VerificationResult(
        kfold=kfold_accuracy(scores, labels, folds),
        curve=roc(scores, labels),
        eer=eer,
        eer_threshold=eer_threshold,
        tar_at_far={far: tar_at_far(scores, labels, far) for far in FAR_TARGETS},
        best_threshold=threshold,
        best_accuracy=accuracy,
        app_threshold=float(app_threshold),
        app_accuracy=float(np.mean(accepted == labels)),
        app_far=float(np.mean(accepted[~labels])) if (~labels).any() else math.nan,
        app_tar=float(np.mean(accepted[labels])) if labels.any() else math.nan,
    )


def pair_scores(embeddings: np.ndarray, left: np.ndarray, right: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair: float64 ``(n,)``; -1 where an image has no usable
    embedding ("reject" policy). ``embeddings`` ``(N, D)`` unit rows; ``left``/``right``
    ``(n,)`` row indices; ``usable`` ``(N,)`` bool."""
    scores = np.einsum("ij,ij->i", embeddings[left].astype(np.float64), embeddings[right].astype(np.float64))
    scores[~(usable[left] & usable[right])] = -1.0
    return np.clip(scores, -1.0, 1.0)


# --------------------------------------------------------------------------- the command
@dataclass(frozen=True)
class LfwDataset:
    """A checked LFW-layout dataset: ``directory/images/NAME_NNNN.jpg`` and a pairs file.

    Attributes:
        directory, pairs_file, images_dir: where it is.
        pairs: the pairs, in file order.
        names: the distinct image file names the pairs use, sorted (each embedded once).
    """

    directory: Path
    pairs_file: Path
    images_dir: Path
    pairs: tuple[Pair, ...]
    names: tuple[str, ...]

    def pair_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of each pair's left and right image in :attr:`names`: two int ``(n,)``."""
        index = {name: row for row, name in enumerate(self.names)}
        return (
            np.array([index[p.left] for p in self.pairs], np.int64),
            np.array([index[p.right] for p in self.pairs], np.int64),
        )


def load_lfw(data_dir: str | os.PathLike | None = None, pairs_file: str | os.PathLike | None = None) -> LfwDataset:
    """Check and read an LFW-layout dataset (default :func:`default_lfw_dir`; the pairs
    file defaults to ``DATA_DIR/pairs.txt``). Raises DatasetError naming what is wrong,
    including images that the pairs name but that are missing."""
    directory = Path(data_dir).expanduser() if data_dir is not None else default_lfw_dir()
    pairs_path = Path(pairs_file).expanduser() if pairs_file is not None else directory / "pairs.txt"
    images_dir = directory / "images"
    if not directory.is_dir():
        raise DatasetError(f"LFW folder not found: {directory} (give DATA_DIR or set FACEAPP_LFW_DIR)")
    if not pairs_path.is_file():
        raise DatasetError(f"pairs file not found: {pairs_path}")
    if not images_dir.is_dir():
        raise DatasetError(f"images folder not found: {images_dir} (expected DATA_DIR/images/NAME_NNNN.jpg)")
    try:
        pairs = read_pairs(pairs_path)
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {pairs_path}: {error}") from None
    except ValueError as error:
        raise DatasetError(str(error)) from None
    names = sorted({name for pair in pairs for name in (pair.left, pair.right)})
    missing = [name for name in names if not (images_dir / name).is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} image(s) named in {pairs_path} are missing from {images_dir}, e.g. {missing[0]}")
    return LfwDataset(directory, pairs_path, images_dir, tuple(pairs), tuple(names))


def run_lfw(
    recognizer: Any,
    dataset: LfwDataset | None = None,
    *,
    out_dir: str | os.PathLike | None = "eval-lfw",
    policy: FacePolicy | None = None,
    flip: bool = True,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the LFW pairs protocol and return the report (a JSON-ready dict).

    ``dataset`` from :func:`load_lfw` (default: ``load_lfw()``). With ``out_dir``, writes
    ``report.json`` and ``roc.png`` there. ``flip`` adds the flip-fused results (two
    network passes per face). ``recognizer`` is a :class:`~faceapp.recognition.pipeline.Recognizer`;
    its threshold is reported as the app's.
    """
    policy = policy or FacePolicy()
    try:
        policy.validate()
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if policy.no_face == "skip":
        raise DatasetError("LFW pairs cannot skip images: use the 'centre' or 'reject' no-face policy")
    dataset = dataset or load_lfw()
    pairs, names = dataset.pairs, dataset.names
    left, right = dataset.pair_indices()
    labels, folds = pair_arrays(list(pairs))

    embeddings = embed_images(
        recognizer, [dataset.images_dir / name for name in names], policy,
        flip=flip, batch_size=batch_size, progress=progress, description="LFW images",
    )
    threshold = float(recognizer.threshold)
    scores = {"plain": pair_scores(embeddings.plain, left, right, embeddings.usable)}
    if embeddings.flip is not None:
        scores["flip"] = pair_scores(embeddings.flip, left, right, embeddings.usable)
    results = {mode: verification_result(values, labels, folds, threshold) for mode, values in scores.items()}
    best = max(results, key=lambda mode: (results[mode].kfold.mean, mode == "plain"))
    no_face = [p.name for p in embeddings.no_face()]
    report: dict[str, Any] = {
        "protocol": "LFW verification, k-fold: each fold's threshold chosen on the other folds",
        "dataset": {
            "directory": str(dataset.directory),
            "pairs_file": str(dataset.pairs_file),
            "pairs": len(pairs),
            "same_person_pairs": int(labels.sum()),
            "folds": len(np.unique(folds)),
            "images": len(names),
        },
        "model": {
            "model_id": recognizer.embedder.model_id,
            "device": recognizer.embedder.device_name,
            "detector_score_threshold": recognizer.detector.config.score_threshold,
        },
        "face_policy": policy.to_json(),
        "faces": {
            "images": len(names),
            "detected": int(embeddings.detected.sum()),
            "no_face": len(no_face),
            "no_face_policy": policy.no_face,
            "no_face_images": no_face,
            "multiple_faces": embeddings.multiple,
        },
        "results": {mode: result.to_json() for mode, result in results.items()},
        "best_mode": best,
        "seconds": round(embeddings.seconds, 1),
    }
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            roc_path = plot_verification_roc(
                {("flip fusion" if mode == "flip" else "plain"): result for mode, result in results.items()},
                out / "roc.png", title=f"LFW ROC ({len(pairs)} pairs, {recognizer.embedder.model_id})",
            )
            scores_path = write_pair_scores(out / "pair_scores.csv", pairs, scores)
            report["outputs"] = {"report": str(out / "report.json"), "roc": str(roc_path), "scores": str(scores_path)}
            write_report(out / "report.json", report)
        except OSError as error:
            raise DatasetError(f"cannot write the report to {out}: {error.strerror or error}") from None
    return report


def plot_verification_roc(results: dict[str, VerificationResult], path: Path, title: str = "ROC") -> Path:
    """Save a PNG of the ROC curves (TAR against FAR on a log axis), the TAR axis
    zoomed on the curves (at LFW's accuracy a 0..1 axis shows flat lines), with each
    curve's TAR at :data:`FAR_TARGETS` marked. Uses matplotlib's Figure (no GUI)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    axes = figure.add_subplot()
    lowest_far, lowest_tar = 1.0, 1.0
    for number, (name, result) in enumerate(results.items()):
        curve = result.curve
        keep = curve.far > 0
        lowest_far = min(lowest_far, float(curve.far[keep].min()))
        shown = keep & (curve.far >= 1e-4)
        lowest_tar = min(lowest_tar, float(curve.tar[shown].min()) if shown.any() else 0.0)
        (line,) = axes.plot(curve.far[keep], curve.tar[keep], label=f"{name}: k-fold {100 * result.kfold.mean:.2f}%, AUC {curve.auc:.4f}")
        for far, (tar, _) in result.tar_at_far.items():
            axes.plot([far], [tar], "o", color=line.get_color(), markersize=4)
            axes.annotate(f"{100 * tar:.2f}%", (far, tar), textcoords="offset points", xytext=(4, -10 - 10 * number), fontsize=8, color=line.get_color())
    axes.set_xscale("log")
    axes.set_xlim(max(min(lowest_far, 1e-3), 1e-4), 1.0)
    axes.set_ylim(max(0.0, math.floor(lowest_tar * 100 - 0.5) / 100), 1.0005)
    axes.set_xlabel("false accept rate (FAR)")
    axes.set_ylabel("true accept rate (TAR)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def write_pair_scores(path: Path, pairs: Sequence[Pair], scores: dict[str, np.ndarray]) -> Path:
    """Write one CSV row per pair: ``left,right,same,fold`` and a column per score set
    (e.g. ``plain``, ``flip``), so that thresholds can be recalibrated without a rerun."""
    import csv

    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["left", "right", "same", "fold", *scores])
        for row, pair in enumerate(pairs):
            writer.writerow([pair.left, pair.right, int(pair.same), pair.fold, *(f"{values[row]:.6f}" for values in scores.values())])
    os.replace(temporary, path)
    return path


def write_report(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically (temporary file + rename)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def format_lfw_table(report: dict[str, Any]) -> str:
    """A short human-readable table of an LFW report."""
    dataset, faces = report["dataset"], report["faces"]
    lines = [
        (
            f"LFW: {dataset['pairs']} pairs in {dataset['folds']} folds, {dataset['images']} images, "
            f"{faces['no_face']} without a detected face ({faces['no_face_policy']}), {report['seconds']:.0f} s"
        ),
        f"{'embedding':<10} {'accuracy (k-fold)':>19} {'AUC':>7} {'EER':>6} {'TAR@1e-2':>9} {'TAR@1e-3':>9} {'best thr':>9} {'acc@app thr':>12}",
    ]
    for mode, result in report["results"].items():
        tar = result["tar_at_far"]
        lines.append(
            f"{mode:<10} {100 * result['accuracy_mean']:>9.2f}% ± {100 * result['accuracy_std']:.2f}% "
            f"{result['auc']:>7.4f} {100 * result['eer']:>5.2f}% {100 * tar['0.01']['tar']:>8.2f}% {100 * tar['0.001']['tar']:>8.2f}% "
            f"{result['best_threshold']:>9.4f} {100 * result['app_accuracy']:>8.2f}% @{result['app_threshold']:.3f}"
        )
    presets = report["results"][report["best_mode"]]["presets"]
    lines.append(
        f"best: {report['best_mode']}; presets from it: strict {presets['strict']:.4f} (FAR 1e-3), "
        f"balanced {presets['balanced']:.4f}, lenient {presets['lenient']:.4f} (FAR 1e-2)"
    )
    if "outputs" in report:
        lines.append(f"report: {report['outputs']['report']}  ROC: {report['outputs']['roc']}")
    return "\n".join(lines)
