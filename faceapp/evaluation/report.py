"""Writing evaluation reports: JSON, per-pair score tables, ROC plots and the terminal table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceapp.evaluation.lfw_pairs import Pair
from faceapp.files import AtomicOutput, write_json

if TYPE_CHECKING:
    from faceapp.evaluation.verification import VerificationResult


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

    with AtomicOutput(path, "w", what="pair scores", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["left", "right", "same", "fold", *scores])
        for row, pair in enumerate(pairs):
            writer.writerow([pair.left, pair.right, int(pair.same), pair.fold, *(f"{values[row]:.6f}" for values in scores.values())])
    return path


def write_report(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically (:func:`faceapp.files.write_json`)."""
    write_json(path, data, what="report")


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
