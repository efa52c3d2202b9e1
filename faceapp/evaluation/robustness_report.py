"""The table and the plot of a ``faceapp eval robustness`` report (the dict that
:func:`faceapp.evaluation.robustness.run_robustness` returns)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["format_robustness_table", "plot_robustness"]

PIPELINE_LABELS = {"faceapp": "FaceApp", "opencv": "OpenCV YuNet + SFace"}


def _percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _accuracy(figures: dict[str, Any]) -> str:
    return f"{_percent(figures['accuracy_mean'])} ± {_percent(figures['accuracy_std'])}"


def format_robustness_table(report: dict[str, Any]) -> str:
    """Human-readable tables: one row per condition and severity (FaceApp, then the
    reference's columns when it ran), then the pose bins."""
    dataset, reference = report["dataset"], "opencv" in report["pipelines"]
    lines = [
        (f"LFW robustness: {dataset['pairs']} pairs in {dataset['folds']} folds ({dataset['second_images']} second images "
         f"degraded, the first clean), seed {report['seed']}, {report['seconds']:.0f} s"),
    ]
    header = f"{'condition':<13} {'sev':>3} {'accuracy':>17} {'TAR@1e-3':>9} {'acc@clean thr':>13} {'no face':>11}"
    if reference:
        header += f" | {'OpenCV accuracy':>17} {'TAR@1e-3':>9} {'no face':>11}"
    lines += [header, "-" * len(header)]
    for row in report["rows"]:
        mine = row["faceapp"]
        line = (f"{row['condition']:<13} {row['severity'] or '-':>3} {_accuracy(mine):>17} {_percent(mine['tar_at_far_1e-3']):>9} "
                f"{_percent(mine['at_clean_thresholds']['accuracy']):>13} {mine['no_face']:>5}/{mine['images']:<5}")
        if reference:
            theirs = row["opencv"]
            line += (f" | {_accuracy(theirs):>17} {_percent(theirs['tar_at_far_1e-3']):>9} "
                     f"{theirs['no_face']:>5}/{theirs['images']:<5}")
        lines.append(line)
    lines.append("accuracy: k-fold, thresholds re-chosen on each condition's scores; acc@clean thr: each fold's clean threshold; "
                 "no face: images where no face was detected")
    pose = report["pose"]
    header = f"{'yaw difference':<15} {'pairs':>6} {'same':>5} {'accuracy':>17} {'TAR@clean 1e-3':>15}"
    if reference:
        header += f" | {'OpenCV accuracy':>17} {'TAR':>8}"
    lines += ["", header, "-" * len(header)]
    for entry in pose["bins"]:
        span = f"{entry['low']:g}-{entry['high']:g}°" if entry["high"] is not None else f">= {entry['low']:g}°"
        mine = entry["faceapp"]
        std = f" ± {_percent(mine['accuracy_std'])}" if mine["accuracy_std"] is not None else ""
        line = (f"{span:<15} {entry['pairs']:>6} {entry['same']:>5} {_percent(mine['accuracy']) + std:>17} "
                f"{_percent(mine['tar_at_clean_far_1e-3']):>15}")
        if reference:
            theirs = entry["opencv"]
            line += f" | {_percent(theirs['accuracy']):>17} {_percent(theirs['tar_at_clean_far_1e-3']):>8}"
        lines.append(line)
    lines.append(f"(yaw from the 5 landmarks of the clean images; median |yaw| {pose['median_abs_yaw'] or 0:.1f}°, "
                 f"{pose['unknown_pairs']} pairs without a detected face left out; each pair judged by its fold's clean threshold)")
    if report.get("quality"):
        from faceapp.evaluation.robustness_quality import format_quality_table

        lines += ["", f"Face quality, error versus discard ({report['quality']['pairs']} pairs pooled, clean decisions):",
                  format_quality_table(report["quality"])]
    if "outputs" in report:
        lines.append(f"report: {report['outputs']['report']}  plot: {report['outputs']['plot']}")
    return "\n".join(lines)


def plot_robustness(report: dict[str, Any], path: Path) -> Path:
    """Save a PNG: accuracy and TAR at FAR 1e-3 against severity (0 = clean) for each
    condition (FaceApp solid, OpenCV dashed), and accuracy by yaw difference. Uses
    matplotlib's Figure (no GUI backend)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15.0, 4.8), dpi=100)
    accuracy_axes, tar_axes, pose_axes = figure.subplots(1, 3)
    clean = report["rows"][0]
    conditions = list(report["conditions"])
    colours = [f"C{number % 10}" for number in range(len(conditions))]
    lowest = {"accuracy_mean": 1.0, "tar_at_far_1e-3": 1.0}
    for pipeline, style in (("faceapp", "o-"), ("opencv", "s--")):
        if pipeline not in report["pipelines"]:
            continue
        for condition, colour in zip(conditions, colours):
            rows = [row for row in report["rows"] if row["condition"] == condition]
            severities = [0] + [row["severity"] for row in rows]
            for axes, key in ((accuracy_axes, "accuracy_mean"), (tar_axes, "tar_at_far_1e-3")):
                values = [clean[pipeline][key]] + [row[pipeline][key] for row in rows]
                values = [float("nan") if v is None else v for v in values]
                lowest[key] = min([lowest[key], *(v for v in values if not math.isnan(v))])
                label = condition if pipeline == "faceapp" else None
                axes.plot(severities, values, style, color=colour, label=label, markersize=4, alpha=1.0 if pipeline == "faceapp" else 0.6)
    for axes, title, key in ((accuracy_axes, "accuracy (k-fold)", "accuracy_mean"), (tar_axes, "TAR at FAR 1e-3", "tar_at_far_1e-3")):
        axes.set_xticks([0, 1, 2, 3], ["clean", "1", "2", "3"])
        axes.set_xlabel("severity")
        axes.set_title(f"{title}: FaceApp solid, OpenCV dashed" if "opencv" in report["pipelines"] else title, fontsize=10)
        axes.set_ylim(max(0.0, lowest[key] - 0.02), 1.005)
        axes.grid(True, alpha=0.3)
    accuracy_axes.legend(loc="lower left", fontsize=8)
    bins = report["pose"]["bins"]
    labels = [f"{b['low']:g}-{b['high']:g}°\n{b['pairs']} pairs" if b["high"] is not None else f">={b['low']:g}°\n{b['pairs']} pairs" for b in bins]
    width, shown = 0.38, [1.0]
    for offset, pipeline in ((-width / 2, "faceapp"), (width / 2, "opencv")):
        if pipeline not in report["pipelines"]:
            continue
        values = [b[pipeline]["accuracy"] if b[pipeline]["accuracy"] is not None else 0.0 for b in bins]
        shown += [b[pipeline]["accuracy"] for b in bins if b[pipeline]["accuracy"] is not None]
        pose_axes.bar([i + offset for i in range(len(bins))], values, width, label=PIPELINE_LABELS[pipeline])
    pose_axes.set_xticks(range(len(bins)), labels, fontsize=8)
    pose_axes.set_ylim(max(0.0, min(shown) - 0.02), 1.005)
    pose_axes.set_title("clean pairs by yaw difference: accuracy", fontsize=10)
    pose_axes.legend(loc="lower left", fontsize=8)
    pose_axes.grid(True, axis="y", alpha=0.3)
    dataset = report["dataset"]
    figure.suptitle(f"LFW, {dataset['pairs']} pairs, second image degraded ({report['model']['model_id']})", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
