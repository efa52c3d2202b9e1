"""SFace fused with dlib's face recognition ResNet on LFW (issue 18).

    python tools/measure_dlib_fusion.py [--lfw DIR] [--pairs FILE] [--cache FILE.npz] [--json FILE] [--timing N]

Every image that LFW's ``pairs.txt`` names goes once through the app's own face finding
(:class:`~faceapp.evaluation.robustness_embed.FaceAppPipeline` under the default
:class:`~faceapp.vision.faces.FacePolicy`, as ``faceapp eval lfw`` runs it: YuNet at 1x and
2x, the face nearest the centre, LFW's mean landmarks where no face is found; flip fusion
off, the app's default), giving its SFace embedding, and two dlib descriptors (our LiteRT
port of dlib's ResNet, :mod:`faceapp.embedding.dlib_resnet`) of two chips:

* ``dlib_predictor``: dlib's own chip (:func:`faceapp.vision.dlib_chip.face_chip`) from
  dlib's 5-point shape predictor run inside YuNet's box (dlib's runtime, for the predictor
  only; the box of an image without a detected face: the mean detected box, relative to
  the image size);
* ``dlib_yunet``: the chip cut from YuNet's 5 landmarks through the template of
  :mod:`faceapp.vision.dlib_align` (no dlib at all).

Scores are cosine similarities. Reported for each model alone and for SFace fused with
each dlib variant: accuracy under LFW's 10-fold protocol (mean ± std over the folds;
every fold's threshold chosen on the other nine, :func:`faceapp.evaluation.metrics.kfold_accuracy`),
the same mean over folds 2-10 only (the template was derived on fold 1's images), TAR at
FAR 1e-3 and AUC over all pairs.

Fusion (z-scores): ``w * (s1 - m1) / sd1 + (1 - w) * (s2 - m2) / sd2``, with the means and
standard deviations of each model's similarities over the *training* folds' pairs (both
classes), and ``w`` from :data:`WEIGHTS` chosen on the training folds too: the one whose
inner 9-fold accuracy (each training fold scored with a threshold from the other eight)
is best, the middle one of a tie. Equal weights (``w`` = 0.5) are reported as well. The
scored fold never enters any choice. The TAR and AUC of a fusion are those of one fixed
fusion, its parameters chosen on all ten folds (as the app would ship it; a single model's
TAR and AUC are over all pairs too); "out of fold" is the TAR of the z-fused scores each
pair got from its own fold's parameters, pooled.

The same fusion as one vector: ``e = [sqrt(a) u_sface, sqrt(b) u_dlib]`` (256 numbers,
unit length), ``a = (w / sd1) / (w / sd1 + (1 - w) / sd2)``, ``b = 1 - a``: the cosine of two
such vectors is ``a s1 + b s2``, a positive affine map of the z-fused score, so every
fold's decisions, and its accuracy, are the same: the script checks it fold by fold, and
the fixed fusion's TAR and AUC in both forms. (Pooled over folds, the vector form's
cosines would mix per-fold scales: no out-of-fold TAR for it.)
That is how the app can store fused templates (unit vectors) without changing its
gallery, matcher or open-set calibration.

``--cache``: the embeddings are kept in (and read back from) this ``.npz``, so a rerun only
scores. ``--timing N``: milliseconds per face of each stage on ``N`` LFW faces (LiteRT
on the CPU, alternating rounds, medians).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from convert_dlib_resnet import LANDMARKS_NAME, packaged_model

from faceapp.evaluation.lfw import LfwDataset, load_lfw
from faceapp.evaluation.lfw_pairs import pair_arrays
from faceapp.evaluation.metrics import best_threshold, kfold_accuracy, roc, tar_at_far
from faceapp.evaluation.verification import pair_scores
from faceapp.vision.dlib_align import DLIB_CHIP_TEMPLATE

logger = logging.getLogger("measure_dlib_fusion")
#: The SFace weights ``w`` searched on the training folds.
WEIGHTS = tuple(round(0.30 + 0.05 * k, 2) for k in range(11))
BATCH = 64
FAR = 1e-3
CACHE_VERSION = 1


# --------------------------------------------------------------------------- embeddings
def dlib_runner():
    """Our dlib ResNet under LiteRT (the flatbuffer cached in the user cache folder):
    RGB float32 ``(N, 150, 150, 3)`` -> raw float32 ``(N, 128)``."""
    from faceapp.accel.litert import Runner, cached_interpreter
    from faceapp.embedding.dlib_resnet import ARCHITECTURE_VERSION, WEIGHTS_SHA256, load_dlib_resnet
    from faceapp.paths import cache_dir

    path = cache_dir() / f"dlib-resnet-v1-{WEIGHTS_SHA256[:16]}-a{ARCHITECTURE_VERSION}.tflite"
    runner = Runner(cached_interpreter(path, load_dlib_resnet, "dlib ResNet"))

    def run(batch: np.ndarray) -> np.ndarray:
        if not len(batch):
            return np.zeros((0, 128), np.float32)
        return np.concatenate([runner(batch[i : i + BATCH])[0] for i in range(0, len(batch), BATCH)])

    return run


def dlib_box(box: np.ndarray):
    """A ``dlib.rectangle`` (inclusive corners) from an ``(x, y, w, h)`` box."""
    import dlib

    x, y, width, height = (float(v) for v in box)
    return dlib.rectangle(round(x), round(y), round(x + width - 1), round(y + height - 1))


def predictor_landmarks(predictor, image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib's 5 points (its order) in ``box``: float64 ``(5, 2)`` whole pixels."""
    rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    shape = predictor(rgb, dlib_box(box))
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)


def compute(dataset: LfwDataset) -> dict[str, np.ndarray]:
    """Everything the scores need, one row per image of ``dataset.names``."""
    import dlib
    from tqdm import tqdm

    from faceapp.embedding.dlib_resnet import to_model_input
    from faceapp.evaluation.robustness_embed import FaceAppPipeline
    from faceapp.media.imageio import read_image
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer
    from faceapp.vision.dlib_align import dlib_chip
    from faceapp.vision.dlib_chip import face_chip
    from faceapp.vision.faces import FacePolicy

    recognizer = Recognizer.create(PipelineConfig(device="cpu"))  # flip fusion off
    pipeline = FaceAppPipeline(recognizer, FacePolicy())
    predictor = dlib.shape_predictor(str(packaged_model(LANDMARKS_NAME)))
    run_dlib = dlib_runner()
    count = len(dataset.names)
    out = {
        "sface": np.zeros((count, 128), np.float32), "detected": np.zeros(count, bool), "usable": np.zeros(count, bool),
        "landmarks": np.full((count, 5, 2), np.nan, np.float32), "boxes": np.full((count, 4), np.nan, np.float32),
        "predictor_landmarks": np.full((count, 5, 2), np.nan), "dlib_predictor": np.zeros((count, 128), np.float32),
        "dlib_yunet": np.zeros((count, 128), np.float32),
    }
    sizes = np.zeros((count, 2))
    start = time.perf_counter()
    for first in tqdm(range(0, count, BATCH), desc="LFW images", unit="batch"):
        rows = list(range(first, min(first + BATCH, count)))
        images = [read_image(dataset.images_dir / dataset.names[row]) for row in rows]
        batch = pipeline.embed(images)
        for key in ("detected", "usable", "landmarks", "boxes"):
            out[key][rows] = getattr(batch, key)
        out["sface"][rows] = batch.embeddings
        sizes[rows] = [image.shape[1::-1] for image in images]
        chips_predictor, chips_yunet = [], []
        for index, (row, image) in enumerate(zip(rows, images, strict=True)):
            if batch.detected[index]:
                out["predictor_landmarks"][row] = predictor_landmarks(predictor, image, batch.boxes[index])
                chips_predictor.append(face_chip(image, out["predictor_landmarks"][row]))
            else:
                chips_predictor.append(np.zeros((150, 150, 3), np.uint8))  # filled in below
            chips_yunet.append(dlib_chip(image, batch.landmarks[index]))
        out["dlib_predictor"][rows] = run_dlib(to_model_input(np.stack(chips_predictor)))
        out["dlib_yunet"][rows] = run_dlib(to_model_input(np.stack(chips_yunet)))
    # Images without a detected face: the predictor runs in the mean detected box.
    missing = np.flatnonzero(~out["detected"])
    relative = (out["boxes"][out["detected"]] / np.tile(sizes[out["detected"]], 2)).mean(axis=0)
    for row in missing:
        image = read_image(dataset.images_dir / dataset.names[row])
        out["predictor_landmarks"][row] = predictor_landmarks(predictor, image, relative * np.tile(sizes[row], 2))
        out["dlib_predictor"][row] = run_dlib(to_model_input(face_chip(image, out["predictor_landmarks"][row])[None]))[0]
    out["seconds"] = np.array(time.perf_counter() - start)
    out["fallback_box"] = relative
    logger.info("embedded %d images in %.0f s (%d without a detected face)", count, float(out["seconds"]), len(missing))
    return out


def load_or_compute(dataset: LfwDataset, cache: Path | None) -> dict[str, np.ndarray]:
    if cache is not None and cache.exists():
        saved = dict(np.load(cache, allow_pickle=False))
        fresh = (int(saved.get("version", -1)) == CACHE_VERSION and tuple(saved["names"]) == dataset.names
                 and np.array_equal(saved["template"], DLIB_CHIP_TEMPLATE))
        if fresh:
            logger.info("embeddings read from %s", cache)
            return saved
        logger.warning("%s was made from other images, another template or another version: computing again", cache)
    data = compute(dataset)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp.npz")
        np.savez(temporary, names=np.array(dataset.names), template=DLIB_CHIP_TEMPLATE, version=CACHE_VERSION, **data)
        temporary.replace(cache)
        logger.info("embeddings kept in %s", cache)
    return data


# --------------------------------------------------------------------------- fusion
@dataclass(frozen=True)
class FusionParameters:
    """One fold's fusion, chosen on its training pairs: SFace's weight ``w``, each model's
    similarity mean and std (``m1, sd1``: SFace; ``m2, sd2``: dlib), the inner accuracy."""

    w: float
    m1: float
    sd1: float
    m2: float
    sd2: float
    inner_accuracy: float

    def z_fused(self, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
        return self.w * (s1 - self.m1) / self.sd1 + (1 - self.w) * (s2 - self.m2) / self.sd2

    @property
    def vector_weight(self) -> float:
        """``a``: SFace's share of the fused unit vector (dlib's is ``1 - a``)."""
        a, b = self.w / self.sd1, (1 - self.w) / self.sd2
        return a / (a + b)

    def to_json(self) -> dict[str, float]:
        return {"w": self.w, "sface_mean": self.m1, "sface_std": self.sd1, "dlib_mean": self.m2, "dlib_std": self.sd2,
                "vector_a": self.vector_weight, "inner_accuracy": self.inner_accuracy}


def choose(s1: np.ndarray, s2: np.ndarray, labels: np.ndarray, folds: np.ndarray,
           weights: tuple[float, ...] = WEIGHTS) -> FusionParameters:
    """The fusion parameters chosen on these pairs (all of them training pairs)."""
    m1, sd1, m2, sd2 = float(s1.mean()), float(s1.std()), float(s2.mean()), float(s2.std())
    inner = []
    for w in weights:
        fused = FusionParameters(w, m1, sd1, m2, sd2, math.nan).z_fused(s1, s2)
        inner.append(kfold_accuracy(fused, labels, folds).mean if len(np.unique(folds)) > 1
                     else best_threshold(fused, labels)[1])  # one training fold: its best accuracy
    inner = np.array(inner)
    tied = np.flatnonzero(inner >= inner.max() - 1e-12)
    best = int(tied[(len(tied) - 1) // 2])
    return FusionParameters(weights[best], m1, sd1, m2, sd2, float(inner[best]))


def unit_rows(values: np.ndarray) -> np.ndarray:
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)


def fused_vectors(u1: np.ndarray, u2: np.ndarray, a: float) -> np.ndarray:
    """``[sqrt(a) u1, sqrt(1 - a) u2]``: float32 ``(N, D1 + D2)`` unit rows."""
    return np.hstack([math.sqrt(a) * u1, math.sqrt(1 - a) * u2]).astype(np.float32)


@dataclass(frozen=True)
class Row:
    """One line of the table. ``tar``, ``auc``: over all pairs, of the model's scores or of
    one fixed fusion (the parameters chosen on all ten folds, as the app would ship them);
    ``tar_out_of_fold``: a z-fusion's TAR over the pooled out-of-fold scores (None for the
    vector form, whose per-fold scores are on per-fold scales)."""

    name: str
    fold_accuracies: np.ndarray
    tar: float
    auc: float
    tar_out_of_fold: float | None = None
    parameters: list[FusionParameters] | None = None
    overall: FusionParameters | None = None

    def to_json(self) -> dict:
        data = {"accuracy_mean": float(self.fold_accuracies.mean()), "accuracy_std": float(self.fold_accuracies.std()),
                "accuracy_folds_2_10": float(self.fold_accuracies[1:].mean()),
                "fold_accuracies": [round(float(v), 6) for v in self.fold_accuracies], f"tar_at_far_{FAR:g}": self.tar,
                "auc": self.auc}
        if self.tar_out_of_fold is not None:
            data[f"tar_at_far_{FAR:g}_out_of_fold"] = self.tar_out_of_fold
        if self.parameters is not None:
            data["fold_parameters"] = [p.to_json() for p in self.parameters]
            data["all_folds_parameters"] = self.overall.to_json()
        return data


def single(name: str, scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> Row:
    tar = tar_at_far(scores, labels, FAR)[0]
    return Row(name, kfold_accuracy(scores, labels, folds).accuracies, tar, roc(scores, labels).auc, tar)


def fusion(name: str, s1: np.ndarray, s2: np.ndarray, labels: np.ndarray, folds: np.ndarray,
           weights: tuple[float, ...], vectors: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
           ) -> tuple[Row, Row | None, float]:
    """The z-fused row (parameters per fold from the training folds), the row of the same
    fusion as unit vectors (when ``vectors`` = (u1, u2, left, right, usable) is given), and
    the largest difference between the two forms' fold accuracies."""
    fold_ids = np.unique(folds)
    accuracies, vector_accuracies = np.zeros(len(fold_ids)), np.zeros(len(fold_ids))
    pooled = np.zeros(len(s1))
    parameters = []
    for index, fold in enumerate(fold_ids):
        train = folds != fold
        chosen = choose(s1[train], s2[train], labels[train], folds[train], weights)
        parameters.append(chosen)
        fused = chosen.z_fused(s1, s2)
        accuracies[index] = kfold_accuracy(fused, labels, folds).accuracies[index]  # threshold from the other folds
        pooled[~train] = fused[~train]
        if vectors is not None:
            u1, u2, left, right, usable = vectors
            cosines = pair_scores(fused_vectors(u1, u2, chosen.vector_weight), left, right, usable)
            vector_accuracies[index] = kfold_accuracy(cosines, labels, folds).accuracies[index]
    overall = choose(s1, s2, labels, folds, weights)
    fixed = overall.z_fused(s1, s2)
    row = Row(name, accuracies, tar_at_far(fixed, labels, FAR)[0], roc(fixed, labels).auc,
              tar_at_far(pooled, labels, FAR)[0], parameters, overall)
    if vectors is None:
        return row, None, math.nan
    u1, u2, left, right, usable = vectors
    fixed_cosines = pair_scores(fused_vectors(u1, u2, overall.vector_weight), left, right, usable)
    vector_row = Row(f"{name}, as 256-d unit vectors", vector_accuracies, tar_at_far(fixed_cosines, labels, FAR)[0],
                     roc(fixed_cosines, labels).auc, None, parameters, overall)
    return row, vector_row, float(np.abs(accuracies - vector_accuracies).max())


def affine_residual(s1: np.ndarray, s2: np.ndarray, u1, u2, left, right, usable, chosen: FusionParameters) -> float:
    """Largest |z-fused score - (k * vector cosine + c)| over all pairs, ``k, c`` from the
    parameters (``k = w / sd1 + (1 - w) / sd2``, ``c = -(w m1 / sd1 + (1 - w) m2 / sd2)``)."""
    cosines = pair_scores(fused_vectors(u1, u2, chosen.vector_weight), left, right, usable)
    slope = chosen.w / chosen.sd1 + (1 - chosen.w) / chosen.sd2
    offset = -(chosen.w * chosen.m1 / chosen.sd1 + (1 - chosen.w) * chosen.m2 / chosen.sd2)
    return float(np.abs(chosen.z_fused(s1, s2) - (slope * cosines + offset)).max())


# --------------------------------------------------------------------------- timing
def timing(dataset: LfwDataset, data: dict[str, np.ndarray], faces: int, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per face of each stage, on the first ``faces`` detected images: the
    median over ``rounds`` alternating rounds of each stage's mean."""
    import dlib

    from faceapp.embedding.dlib_resnet import to_model_input
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import Embedder
    from faceapp.media.imageio import read_image
    from faceapp.vision.alignment import align_face
    from faceapp.vision.dlib_align import dlib_chip
    from faceapp.vision.dlib_chip import face_chip

    rows = np.flatnonzero(data["detected"])[:faces]
    images = [read_image(dataset.images_dir / dataset.names[row]) for row in rows]
    landmarks, boxes = data["landmarks"][rows], data["boxes"][rows]
    predictor = dlib.shape_predictor(str(packaged_model(LANDMARKS_NAME)))
    sface = Embedder(load_card("sface"), device="cpu")
    run_dlib = dlib_runner()
    aligned = np.stack([align_face(image, points) for image, points in zip(images, landmarks, strict=True)])
    chips = to_model_input(np.stack([dlib_chip(image, points) for image, points in zip(images, landmarks, strict=True)]))
    points = [predictor_landmarks(predictor, image, box) for image, box in zip(images, boxes, strict=True)]

    stages = {
        "sface_align": lambda: [align_face(image, p) for image, p in zip(images, landmarks, strict=True)],
        "sface_embed_batch64": lambda: sface.embed(aligned),
        "sface_embed_batch1": lambda: [sface.embed(aligned[i : i + 1]) for i in range(len(aligned))],
        "dlib_chip_yunet_template": lambda: [dlib_chip(image, p) for image, p in zip(images, landmarks, strict=True)],
        "dlib_predictor": lambda: [predictor_landmarks(predictor, image, box) for image, box in zip(images, boxes, strict=True)],
        "dlib_chip_numpy_port": lambda: [face_chip(image, p) for image, p in zip(images, points, strict=True)],
        "dlib_embed_batch64": lambda: run_dlib(chips),
        "dlib_embed_batch1": lambda: [run_dlib(chips[i : i + 1]) for i in range(len(chips))],
    }
    for stage in stages.values():  # warm up (interpreter allocation for each batch shape)
        stage()
    per_round: dict[str, list[float]] = {name: [] for name in stages}
    names = list(stages)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            stages[name]()
            per_round[name].append((time.perf_counter() - start) * 1000 / len(rows))
    return {name: float(np.median(values)) for name, values in per_round.items()}


# --------------------------------------------------------------------------- report
def table(rows: list[Row]) -> str:
    lines = ["| | accuracy (10 folds) | folds 2-10 | TAR @ FAR 1e-3 | out of fold | AUC |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        acc = row.fold_accuracies
        out_of_fold = "" if row.tar_out_of_fold is None else f"{100 * row.tar_out_of_fold:.2f}%"
        lines.append(f"| {row.name} | {100 * acc.mean():.2f}% ± {100 * acc.std():.2f}% | {100 * acc[1:].mean():.2f}% "
                     f"| {100 * row.tar:.2f}% | {out_of_fold} | {row.auc:.5f} |")
    return "\n".join(lines)


def parameter_table(row: Row) -> str:
    lines = [f"{row.name}: fold, w, SFace mean / std, dlib mean / std, vector a, inner accuracy"]
    for index, p in enumerate([*row.parameters, row.overall]):
        label = f"{index + 1:>4d}" if index < len(row.parameters) else " all"
        lines.append(f"  {label}  w {p.w:.2f}  {p.m1:.4f} / {p.sd1:.4f}  {p.m2:.4f} / {p.sd2:.4f}  a {p.vector_weight:.4f}"
                     f"  inner {100 * p.inner_accuracy:.2f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=None, help="LFW folder (default ../shared/data/lfw)")
    parser.add_argument("--pairs", type=Path, default=None, help="pairs file (default: LFW's pairs.txt)")
    parser.add_argument("--cache", type=Path, default=None, help="keep the embeddings in this .npz (read it when it matches)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this JSON file")
    parser.add_argument("--timing", type=int, default=0, metavar="N", help="also time each stage on N faces")
    args = parser.parse_args(argv)
    if packaged_model(LANDMARKS_NAME) is None:
        raise SystemExit("needs dlib's 5-point predictor: pip install dlib-bin face_recognition_models")
    dataset = load_lfw(args.lfw, args.pairs)
    data = load_or_compute(dataset, args.cache)
    labels, folds = pair_arrays(list(dataset.pairs))
    left, right = dataset.pair_indices()
    usable = data["usable"].astype(bool)
    u_sface = data["sface"]
    u_dlib = {"predictor": unit_rows(data["dlib_predictor"]), "yunet": unit_rows(data["dlib_yunet"])}
    s_sface = pair_scores(u_sface, left, right, usable)
    s_dlib = {kind: pair_scores(u, left, right, usable) for kind, u in u_dlib.items()}

    rows = [single("(a) SFace (ours, the app's pipeline)", s_sface, labels, folds),
            single("(b) dlib ResNet, chips from dlib's predictor in YuNet's box", s_dlib["predictor"], labels, folds),
            single("(c) dlib ResNet, chips from YuNet's landmarks (template)", s_dlib["yunet"], labels, folds)]
    fused_rows, checks = [], {}
    for kind, label in (("predictor", "b"), ("yunet", "c")):
        vectors = (u_sface, u_dlib[kind], left, right, usable)
        chosen, as_vectors, difference = fusion(f"(d) SFace + ({label}), z-fused, w chosen on the training folds",
                                                s_sface, s_dlib[kind], labels, folds, WEIGHTS, vectors)
        equal, _, _ = fusion(f"(d) SFace + ({label}), z-fused, equal weights", s_sface, s_dlib[kind], labels, folds, (0.5,))
        fused_rows += [chosen, as_vectors, equal]
        checks[kind] = {"largest_fold_accuracy_difference_vector_vs_z": difference,
                        "largest_affine_residual_all_folds_parameters": affine_residual(
                            s_sface, s_dlib[kind], u_sface, u_dlib[kind], left, right, usable, chosen.overall)}
    rows += fused_rows
    print(f"\nLFW, {len(dataset.pairs)} pairs, {len(dataset.names)} images "
          f"({int((~data['detected'].astype(bool)).sum())} without a detected face: centre alignment; "
          "the predictor in the mean box); flip fusion off\n")
    print(table(rows))
    print()
    for row in fused_rows:
        if "as 256-d" not in row.name and "equal" not in row.name:
            print(parameter_table(row))
    for kind, values in checks.items():
        print(f"vector form vs z-fusion ({kind}): largest fold accuracy difference "
              f"{values['largest_fold_accuracy_difference_vector_vs_z']:.1e}, largest |z - (k cos + c)| "
              f"{values['largest_affine_residual_all_folds_parameters']:.1e}")
    agreement = np.einsum("ij,ij->i", u_dlib["predictor"], u_dlib["yunet"])
    print(f"cosine of the two dlib descriptors of each image (predictor's chip vs template chip): mean "
          f"{agreement.mean():.4f}, 1st percentile {np.percentile(agreement, 1):.4f}, least {agreement.min():.4f}")
    report = {"pairs": len(dataset.pairs), "images": len(dataset.names),
              "no_face": int((~data["detected"].astype(bool)).sum()), "weights_searched": list(WEIGHTS),
              "rows": {row.name: row.to_json() for row in rows}, "vector_checks": checks,
              "dlib_descriptor_agreement": {"mean": float(agreement.mean()), "p1": float(np.percentile(agreement, 1)),
                                            "min": float(agreement.min())},
              "embedding_seconds": float(data["seconds"])}
    if args.timing:
        report["ms_per_face"] = timing(dataset, data, args.timing)
        print("\nms per face (LiteRT on the CPU, medians of alternating rounds):")
        for name, value in report["ms_per_face"].items():
            print(f"  {name:28s} {value:7.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
