"""``faceapp eval robustness``: LFW's 10-fold protocol with one image of every pair degraded.

The protocol of ``faceapp eval lfw`` (each fold's threshold chosen on the other folds;
TAR at FAR 1e-3 from the impostor scores, :mod:`faceapp.evaluation.metrics`), run once
on the clean images and then once per condition and severity of
:mod:`faceapp.evaluation.degrade`, where the **second** image of every pair (the
right-hand one in ``pairs.txt``) is degraded and the first stays clean: a clean
enrolment photo against a poor camera picture. Every image is embedded clean once; for
each condition only the pairs' second images are degraded and embedded again. A degraded
image depends only on the seed, the condition, the severity and the image's name, so a
rerun, or a run on a subset of the pairs, degrades each image identically. An image
used as the second image of several pairs is degraded once and used in all of them.

The faces are found as in ``eval lfw`` (:class:`~faceapp.vision.faces.FacePolicy`),
anew on each degraded image; a degraded image where no face is found is aligned at
LFW's mean face position ("centre") or its pairs declared different ("reject"), as the
policy says, and counted. Occlusions, blurs and the small-face scale are placed and
sized from the face found in the clean image.

Each condition's accuracy is the k-fold one (thresholds re-chosen on its own degraded
scores: how separable the scores still are); ``at_clean_thresholds`` applies the clean
run's thresholds instead (what an app tuned on clean photos would do): the accuracy
with each fold's clean threshold, and TAR and FAR at the clean threshold of FAR 1e-3.

Head pose: the clean pairs are binned by the difference of the two faces' yaw
(:func:`faceapp.vision.pose.yaw_degrees`, from the landmarks the app found), and each
bin's accuracy (each pair judged by its fold's clean threshold) and TAR / FAR at the
clean threshold of FAR 1e-3 are reported.

With an :class:`~faceapp.evaluation.robustness_embed.OpenCVReference`, OpenCV's own
pipeline is measured on the very same degraded images, row by row.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.evaluation.degrade import CONDITIONS, SEVERITIES, FaceRegion, condition_parameters, degrade, image_rng
from faceapp.evaluation.images import DatasetError
from faceapp.evaluation.lfw import LfwDataset
from faceapp.evaluation.lfw_pairs import Pair, pair_arrays
from faceapp.evaluation.robustness_embed import MEASURES, FaceAppPipeline, FaceBatch
from faceapp.evaluation.robustness_quality import PooledPairs, quality_section
from faceapp.evaluation.verification import VerificationResult, pair_scores, verification_result
from faceapp.vision.faces import FacePolicy
from faceapp.vision.pose import yaw_degrees

logger = logging.getLogger(__name__)

__all__ = ["POSE_BINS", "RobustnessConfig", "run_robustness", "select_pairs"]

#: The yaw-difference bins, in degrees: [0, 10), [10, 20), [20, 35), [35, inf).
POSE_BINS = (0.0, 10.0, 20.0, 35.0, math.inf)
#: The FAR whose TAR the report gives.
FAR = 1e-3


@dataclass(frozen=True)
class RobustnessConfig:
    """What to run.

    Attributes:
        conditions: names from :data:`~faceapp.evaluation.degrade.CONDITIONS`.
        severities: each 1, 2 or 3.
        pairs: a subset of this many pairs, as even as possible over folds and over same
            and different pairs, drawn with ``seed``; None: every pair.
        seed: seeds the subset and every degradation.
        batch_size: faces per embedding batch.
    """

    conditions: tuple[str, ...] = tuple(CONDITIONS)
    severities: tuple[int, ...] = SEVERITIES
    pairs: int | None = None
    seed: int = 0
    batch_size: int = 64

    def validate(self) -> None:
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or not self.conditions:
            raise ValueError(f"unknown condition(s) {', '.join(unknown) or '(none given)'}; expected some of {', '.join(CONDITIONS)}")
        if not self.severities or any(s not in SEVERITIES for s in self.severities):
            raise ValueError(f"severities must be some of 1, 2, 3, got {self.severities}")
        if self.pairs is not None and self.pairs < 1:
            raise ValueError(f"pairs must be a positive number, got {self.pairs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def select_pairs(pairs: Sequence[Pair], count: int | None, seed: int) -> np.ndarray:
    """Row numbers (sorted, int64) of ``count`` pairs spread as evenly as possible over
    the (fold, same/different) groups, drawn at random within each with ``seed``; every
    row when ``count`` is None or not smaller than ``len(pairs)``. Raises DatasetError
    when ``count`` leaves a group empty."""
    if count is None or count >= len(pairs):
        return np.arange(len(pairs), dtype=np.int64)
    groups: dict[tuple[int, bool], list[int]] = {}
    for row, pair in enumerate(pairs):
        groups.setdefault((pair.fold, pair.same), []).append(row)
    if count < len(groups):
        raise DatasetError(f"--pairs {count} is too few: the {len(groups)} groups (folds x same/different) need one pair each")
    rng = np.random.default_rng(seed)
    quota, extra = divmod(count, len(groups))
    chosen: list[int] = []
    for number, key in enumerate(sorted(groups)):
        rows = groups[key]
        take = min(len(rows), quota + (number < extra))
        chosen += [rows[i] for i in rng.permutation(len(rows))[:take]]
    return np.array(sorted(chosen), dtype=np.int64)


@contextlib.contextmanager
def _far_resolution_noted(impostors: int) -> Iterator[None]:
    """Say once (not once per condition) that FAR 1e-3 is below the impostor set's resolution."""
    if impostors * FAR >= 1:
        yield
        return
    logger.warning("%d impostor pairs: FAR %g is evaluated as FAR 0 (at least %d are needed to resolve it)",
                   impostors, FAR, math.ceil(1 / FAR))
    metrics_logger = logging.getLogger("faceapp.evaluation.metrics")

    def drop(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("target FAR")

    metrics_logger.addFilter(drop)
    try:
        yield
    finally:
        metrics_logger.removeFilter(drop)


def _concat(batches: list[FaceBatch]) -> FaceBatch:
    return FaceBatch(*(np.concatenate([getattr(b, field) for b in batches]) for field in
                       ("embeddings", "detected", "usable", "landmarks", "boxes", "measures")))


def _embed_all(pipelines: Sequence[Any], names: Sequence[str], make_image: Callable[[str], np.ndarray],
               batch_size: int, bar: Any) -> dict[str, FaceBatch]:
    """Every pipeline's :class:`FaceBatch` of ``make_image(name)`` for each of ``names``
    (each image made once and given to every pipeline)."""
    parts: dict[str, list[FaceBatch]] = {p.name: [] for p in pipelines}
    for first in range(0, len(names), batch_size):
        images = [make_image(name) for name in names[first : first + batch_size]]
        for pipeline in pipelines:
            parts[pipeline.name].append(pipeline.embed(images))
        if bar is not None:
            bar.update(len(images))
    return {name: _concat(batches) for name, batches in parts.items()}


def _fold_thresholds(clean: VerificationResult, folds: np.ndarray) -> np.ndarray:
    """Each pair's threshold: the clean k-fold threshold of its fold ``(n,)``."""
    return clean.kfold.thresholds[np.searchsorted(np.unique(folds), folds)]


def _rate(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _figures(result: VerificationResult, clean: VerificationResult, scores: np.ndarray, labels: np.ndarray,
             folds: np.ndarray, faces: FaceBatch) -> dict[str, Any]:
    """One pipeline's figures on one set of pair scores (JSON-ready)."""
    threshold = clean.tar_at_far[FAR][1]
    tar, tar_threshold = result.tar_at_far[FAR]
    return {
        "accuracy_mean": result.kfold.mean,
        "accuracy_std": result.kfold.std,
        "fold_accuracies": [float(a) for a in result.kfold.accuracies],
        "auc": result.curve.auc,
        "eer": result.eer,
        "tar_at_far_1e-3": tar,
        "threshold_at_far_1e-3": tar_threshold,
        "at_clean_thresholds": {
            "accuracy": float(np.mean((scores >= _fold_thresholds(clean, folds)) == labels)),
            "threshold_at_far_1e-3": threshold,
            "tar": _rate(scores[labels] >= threshold),
            "far": _rate(scores[~labels] >= threshold),
        },
        "images": len(faces.detected),
        "no_face": int((~faces.detected).sum()),
        "median_face_width": float(np.median(faces.boxes[faces.detected, 2])) if faces.detected.any() else None,
    }


def _pose_bins(yaw_left: np.ndarray, yaw_right: np.ndarray, labels: np.ndarray, folds: np.ndarray,
               clean: dict[str, tuple[np.ndarray, VerificationResult]]) -> dict[str, Any]:
    """Clean pairs binned by ``|yaw_left - yaw_right|`` (NaN where a face was not detected)."""
    difference = np.abs(yaw_left - yaw_right)
    known = np.isfinite(difference)
    bins = []
    for low, high in itertools.pairwise(POSE_BINS):
        inside = known & (difference >= low) & (difference < high)
        entry: dict[str, Any] = {"low": low, "high": None if math.isinf(high) else high,
                                 "pairs": int(inside.sum()), "same": int((inside & labels).sum())}
        for name, (scores, result) in clean.items():
            correct = (scores >= _fold_thresholds(result, folds)) == labels
            per_fold = [float(np.mean(correct[inside & (folds == f)])) for f in np.unique(folds[inside])]
            threshold = result.tar_at_far[FAR][1]
            entry[name] = {
                "accuracy": _rate(correct[inside]),
                "accuracy_std": float(np.std(per_fold)) if len(per_fold) > 1 else None,
                "tar_at_clean_far_1e-3": _rate(scores[inside & labels] >= threshold),
                "far_at_clean_far_1e-3": _rate(scores[inside & ~labels] >= threshold),
            }
        bins.append(entry)
    yaws = np.concatenate([yaw_left, yaw_right])
    yaws = np.abs(yaws[np.isfinite(yaws)])
    return {
        "yaw": "faceapp.vision.pose.yaw_degrees on the landmarks the app found in the clean images",
        "unknown_pairs": int((~known).sum()),
        "median_abs_yaw": float(np.median(yaws)) if len(yaws) else None,
        "median_yaw_difference": float(np.median(difference[known])) if known.any() else None,
        "bins": bins,
    }


def run_robustness(recognizer: Any, dataset: LfwDataset, config: RobustnessConfig | None = None, *,
                   policy: FacePolicy | None = None, reference: Any = None, out_dir: str | os.PathLike | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Run the clean row and every condition x severity of ``config`` and return the report
    (a JSON-ready dict; see :mod:`faceapp.evaluation.robustness_report` for its table).

    ``recognizer``: a :class:`~faceapp.recognition.pipeline.Recognizer`. ``reference``: an
    :class:`~faceapp.evaluation.robustness_embed.OpenCVReference`, or None. With
    ``out_dir``: ``report.json``, ``robustness.png`` and ``pair_scores.csv`` are written there.
    """
    from faceapp.evaluation.report import write_pair_scores, write_report
    from faceapp.evaluation.robustness_report import plot_robustness
    from faceapp.media.imageio import read_image

    config = config or RobustnessConfig()
    policy = policy or FacePolicy()
    try:
        config.validate()
        policy.validate()
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if policy.no_face == "skip":
        raise DatasetError("LFW pairs cannot skip images: use the 'centre' or 'reject' no-face policy")
    started = time.perf_counter()
    chosen = select_pairs(dataset.pairs, config.pairs, config.seed)
    pairs = [dataset.pairs[row] for row in chosen]
    labels, folds = pair_arrays(pairs)
    if len(np.unique(folds)) < 2:
        raise DatasetError("k-fold evaluation needs 2 or more folds in the pairs file")
    names = sorted({name for pair in pairs for name in (pair.left, pair.right)})
    seconds = sorted({pair.right for pair in pairs})
    row_of = {name: row for row, name in enumerate(names)}
    second_of = {name: row for row, name in enumerate(seconds)}
    left = np.array([row_of[p.left] for p in pairs], np.int64)
    right = np.array([row_of[p.right] for p in pairs], np.int64)
    right_degraded = np.array([second_of[p.right] for p in pairs], np.int64)
    pipelines = [FaceAppPipeline(recognizer, policy)] + ([reference] if reference is not None else [])
    sets = [(c, s) for c in config.conditions for s in config.severities]

    def read(name: str) -> np.ndarray:
        return read_image(dataset.images_dir / name)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names) + len(sets) * len(seconds), desc="clean", unit="image", leave=False)
    rows: list[dict[str, Any]] = []
    all_scores: dict[str, np.ndarray] = {}
    try:
        with _far_resolution_noted(int((~labels).sum())):
            began = time.perf_counter()
            clean = _embed_all(pipelines, names, read, config.batch_size, bar)
            mine = clean[FaceAppPipeline.name]
            regions = {}
            for name in seconds:
                row = row_of[name]
                box = mine.boxes[row]
                regions[name] = (FaceRegion(tuple(float(v) for v in box), mine.landmarks[row]) if mine.detected[row]
                                 else FaceRegion.from_landmarks(mine.landmarks[row]))
            threshold = float(recognizer.verification_threshold)
            clean_results: dict[str, tuple[np.ndarray, VerificationResult]] = {}
            entry: dict[str, Any] = {"condition": "clean", "severity": 0, "parameters": "", "seconds": 0.0}
            for pipeline in pipelines:
                faces = clean[pipeline.name]
                scores = pair_scores(faces.embeddings, left, right, faces.usable)
                result = verification_result(scores, labels, folds, threshold)
                clean_results[pipeline.name] = (scores, result)
                entry[pipeline.name] = _figures(result, result, scores, labels, folds, faces)
                all_scores[f"{pipeline.name}:clean"] = scores
            pooled = [(clean_results[FaceAppPipeline.name][0], mine.measures[right])]
            entry["seconds"] = round(time.perf_counter() - began, 1)
            rows.append(entry)
            for condition, severity in sets:
                began = time.perf_counter()
                if bar is not None:
                    bar.set_description(f"{condition} {severity}")

                def make(name: str, condition: str = condition, severity: int = severity) -> np.ndarray:
                    rng = image_rng(config.seed, condition, severity, name)
                    return degrade(read(name), condition, severity, rng, regions[name])

                degraded = _embed_all(pipelines, seconds, make, config.batch_size, bar)
                entry = {"condition": condition, "severity": severity, "parameters": condition_parameters(condition, severity)}
                for pipeline in pipelines:
                    faces, base = degraded[pipeline.name], clean[pipeline.name]
                    both = np.concatenate([base.embeddings, faces.embeddings])
                    usable = np.concatenate([base.usable, faces.usable])
                    scores = pair_scores(both, left, right_degraded + len(names), usable)
                    result = verification_result(scores, labels, folds, threshold)
                    entry[pipeline.name] = _figures(result, clean_results[pipeline.name][1], scores, labels, folds, faces)
                    all_scores[f"{pipeline.name}:{condition}/{severity}"] = scores
                    if pipeline.name == FaceAppPipeline.name:
                        pooled.append((scores, faces.measures[right_degraded]))
                entry["seconds"] = round(time.perf_counter() - began, 1)
                rows.append(entry)
                logger.info("%s %d: accuracy %.4f (%.1f s)", condition, severity, entry["faceapp"]["accuracy_mean"], entry["seconds"])
    finally:
        if bar is not None:
            bar.close()
    yaws = np.array([yaw_degrees(mine.landmarks[r]) if mine.detected[r] else np.nan for r in range(len(names))])
    clean_mine = clean_results[FaceAppPipeline.name][1]
    pooled_pairs = PooledPairs(
        np.concatenate([scores for scores, _ in pooled]), np.tile(labels, len(pooled)),
        np.tile(_fold_thresholds(clean_mine, folds), len(pooled)), float(clean_mine.tar_at_far[FAR][1]),
        np.concatenate([mine.measures[left]] * len(pooled)), np.concatenate([measures for _, measures in pooled]))
    quality = quality_section(pooled_pairs, seed=config.seed)
    report: dict[str, Any] = {
        "protocol": ("LFW verification, k-fold (each fold's threshold chosen on the other folds), the second image "
                     "of every pair degraded; TAR at FAR 1e-3 from the impostor scores"),
        "dataset": {
            "directory": str(dataset.directory),
            "pairs_file": str(dataset.pairs_file),
            "pairs": len(pairs),
            "pairs_in_file": len(dataset.pairs),
            "same_person_pairs": int(labels.sum()),
            "folds": len(np.unique(folds)),
            "images": len(names),
            "second_images": len(seconds),
        },
        "degraded_image": "the second (right-hand) image of every pair; the first stays clean",
        "seed": config.seed,
        "conditions": {c: {str(s): condition_parameters(c, s) for s in config.severities} for c in config.conditions},
        "model": {
            "model_id": recognizer.embedder.model_id,
            "device": recognizer.embedder.device_name,
            "flip_fusion": bool(getattr(recognizer, "flip", False)),
            "detector_score_threshold": recognizer.detector.config.score_threshold,
        },
        "face_policy": policy.to_json(),
        "pipelines": [p.name for p in pipelines],
        "reference": None if reference is None else {
            "name": reference.name,
            "sface_onnx": str(reference.sface_onnx),
            "description": "cv2.FaceDetectorYN at the image's own size + cv2.FaceRecognizerSF alignCrop/feature (OpenCV Zoo's ONNX)",
        },
        "rows": rows,
        "pose": _pose_bins(yaws[left], yaws[right], labels, folds, clean_results),
        "quality": quality,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report = _json_ready(report)
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            plot = plot_robustness(report, out / "robustness.png")
            table = write_pair_scores(out / "pair_scores.csv", pairs, {"yaw_left": yaws[left], "yaw_right": yaws[right], **all_scores})
            views = out / "quality_pairs.npz"
            np.savez_compressed(views, **vars(pooled_pairs), measures=np.array(MEASURES),
                                sets=np.repeat(np.arange(len(pooled)), len(pairs)),
                                set_names=np.array(["clean"] + [f"{c}/{s}" for c, s in sets]))
            report["outputs"] = {"report": str(out / "report.json"), "plot": str(plot), "scores": str(table),
                                 "quality_pairs": str(views)}
            write_report(out / "report.json", report)
        except OSError as error:
            raise DatasetError(f"cannot write the report to {out}: {error.strerror or error}") from None
    return report


def _json_ready(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN / infinities as None."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
