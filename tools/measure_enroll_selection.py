"""Which templates should enrollment keep? (issue 17: pose-diverse enrollment; the README's
table under "Degraded images and head pose").

    python tools/measure_enroll_selection.py [--lfw DIR] [--min-images 6] [--pool 4] [--count 2] [--seeds 20]

LFW people with at least ``--min-images`` photos are enrolled; each of them offers a pool
of ``--pool`` candidate photos (drawn at random, with ``--seeds`` draws), from which each
strategy keeps ``--count`` templates; their other photos are the known probes. People
with one photo are the strangers. Every face is found, aligned and embedded once with
the app's own pipeline (``faceapp eval robustness``'s), which also measures its view
quality (the enrollment score, :func:`faceapp.vision.quality.quality_scores`) and yaw
(:func:`faceapp.vision.pose.yaw_degrees`). The strategies:

* ``first``: the first ``count`` candidates (what a capture that takes the first good
  frames keeps);
* ``best_quality``: the highest view scores;
* ``frontal``: the most frontal candidates (what "look at the camera" gives);
* ``pose``: the most frontal, the most turned to the left and to the right;
* ``adds_most``: :func:`faceapp.recognition.template_selection.select_templates` (cover the
  pool, weighted by view quality);
* ``pose_adds_most``: the same with the pool grouped by pose (frontal, left, right; at
  least one of each), as the webcam enroll dialog keeps them;
* ``whole_pool``: every candidate (more templates: the reference to beat).

Printed per strategy: closed-set rank-1 over every known probe, the detection-and-
identification rate at a false-alarm rate of 1% of the strangers (the threshold
chosen on the strangers of that draw) over every probe and over the probes turned
by 20 degrees or more, and the mean best similarity of a probe to its own person;
mean +- standard deviation over the draws, and the paired differences to ``first``
(each draw's figure minus ``first``'s on the same draw).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.evaluation.ident import discover_people
from faceapp.evaluation.robustness_embed import FaceAppPipeline
from faceapp.evaluation.robustness_quality import candidate_scores
from faceapp.media.imageio import read_image
from faceapp.paths import lfw_dir
from faceapp.recognition.pipeline import PipelineConfig, Recognizer
from faceapp.recognition.template_selection import select_templates
from faceapp.vision.faces import FacePolicy
from faceapp.vision.pose import yaw_degrees

STRATEGIES = ("first", "best_quality", "frontal", "pose", "adds_most", "pose_adds_most", "whole_pool")
#: Yaw (degrees) beyond which a candidate counts as turned left (+) or right (-).
TURNED = 10.0
#: Probes turned at least this much are reported apart.
TURNED_PROBE = 20.0


def embed_people(paths: list[Path], cache: Path | None) -> dict[str, np.ndarray]:
    if cache is not None and cache.exists():
        data = np.load(cache)
        row_of = {name: row for row, name in enumerate(data["paths"])}
        if all(str(p) in row_of for p in paths):
            rows = np.array([row_of[str(p)] for p in paths])
            return {key: data[key][rows] for key in data.files if key != "paths"}
    from tqdm import tqdm

    pipeline = FaceAppPipeline(Recognizer.create(PipelineConfig(device="cpu")), FacePolicy(no_face="reject"))
    parts = []
    for first in tqdm(range(0, len(paths), 64), desc="embedding", unit="batch"):
        parts.append(pipeline.embed([read_image(p) for p in paths[first : first + 64]]))
    embeddings = np.concatenate([b.embeddings for b in parts])
    detected = np.concatenate([b.detected for b in parts])
    measures = np.concatenate([b.measures for b in parts])
    landmarks = np.concatenate([b.landmarks for b in parts])
    yaw = np.array([yaw_degrees(points) if found else np.nan for points, found in zip(landmarks, detected)])
    result = {"embeddings": embeddings, "detected": detected, "quality": candidate_scores(measures)["enrollment"], "yaw": yaw}
    if cache is not None:
        np.savez(cache, paths=np.array([str(p) for p in paths]), **result)
    return result


def choose(strategy: str, pool: np.ndarray, data: dict[str, np.ndarray], count: int) -> np.ndarray:
    """Rows of ``pool`` (image indices) kept by ``strategy``."""
    quality, yaw = data["quality"][pool], data["yaw"][pool]
    if strategy == "first" or strategy == "whole_pool":
        return pool[: len(pool) if strategy == "whole_pool" else count]
    if strategy == "best_quality":
        return pool[np.argsort(-quality, kind="stable")[:count]]
    if strategy == "frontal":
        return pool[np.argsort(np.abs(yaw), kind="stable")[:count]]
    if strategy == "pose":
        picks = [int(np.argmin(np.abs(yaw))), int(np.argmax(yaw)), int(np.argmin(yaw))]
        rest = [i for i in np.argsort(-quality, kind="stable") if i not in picks]
        order = list(dict.fromkeys(picks)) + rest
        return pool[order[:count]]
    groups = None
    if strategy == "pose_adds_most":
        groups = np.where(yaw >= TURNED, "left", np.where(yaw <= -TURNED, "right", "frontal"))
    return pool[select_templates(data["embeddings"][pool], count, weights=quality, groups=groups)]


def evaluate(gallery: list[tuple[int, np.ndarray]], probes: list[tuple[int, np.ndarray]], strangers: np.ndarray,
             data: dict[str, np.ndarray]) -> dict[str, float]:
    """Figures of one gallery: ``gallery`` / ``probes``: (person number, image indices)."""
    embeddings = data["embeddings"]
    templates = np.concatenate([rows for _, rows in gallery])
    owner = np.concatenate([np.full(len(rows), person) for person, rows in gallery])
    people = int(owner.max()) + 1

    def best_per_person(rows: np.ndarray) -> np.ndarray:
        similarity = embeddings[rows] @ embeddings[templates].T
        best = np.full((len(rows), people), -1.0, np.float32)
        for person in range(people):
            best[:, person] = similarity[:, owner == person].max(axis=1)
        return best

    probe_rows = np.concatenate([rows for _, rows in probes])
    probe_owner = np.concatenate([np.full(len(rows), person) for person, rows in probes])
    known = best_per_person(probe_rows)
    stranger_best = best_per_person(strangers).max(axis=1)
    threshold = float(np.quantile(stranger_best, 0.99))
    right = known.argmax(axis=1) == probe_owner
    own = known[np.arange(len(probe_rows)), probe_owner]
    identified = right & (own >= threshold)
    turned = np.abs(data["yaw"][probe_rows]) >= TURNED_PROBE
    return {
        "rank1": float(right.mean()),
        "dir_at_1pct": float(identified.mean()),
        "dir_turned": float(identified[turned].mean()) if turned.any() else float("nan"),
        "own_similarity": float(own.mean()),
        "templates": float(len(templates) / len(gallery)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=lfw_dir())
    parser.add_argument("--min-images", type=int, default=6)
    parser.add_argument("--max-images", type=int, default=30, help="at most this many photos of one person are used")
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--strangers", type=int, default=2000)
    parser.add_argument("--cache", type=Path, help="an .npz of the embeddings, written once, read on later runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    people = discover_people(args.lfw)
    rng = np.random.default_rng(0)
    known_people = [(name, paths[: args.max_images]) for name, paths in people.items() if len(paths) >= args.min_images]
    singles = [paths[0] for paths in people.values() if len(paths) == 1]
    singles = [singles[i] for i in sorted(rng.permutation(len(singles))[: args.strangers])]
    paths = [p for _, group in known_people for p in group] + singles
    data = embed_people(paths, args.cache)
    ranges, start = [], 0
    for _, group in known_people:
        ranges.append(np.arange(start, start + len(group)))
        start += len(group)
    strangers = np.arange(start, len(paths))[data["detected"][start:]]
    results: dict[str, list[dict[str, float]]] = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        draw = np.random.default_rng(seed + 1)
        splits = []
        for rows in ranges:
            rows = rows[data["detected"][rows]]
            rows = rows[draw.permutation(len(rows))]
            if len(rows) > args.pool:
                splits.append((rows[: args.pool], rows[args.pool :]))
        for strategy in STRATEGIES:
            gallery = [(n, choose(strategy, pool, data, args.count)) for n, (pool, _) in enumerate(splits)]
            probes = [(n, rest) for n, (_, rest) in enumerate(splits)]
            results[strategy].append(evaluate(gallery, probes, strangers, data))
    probes = sum(len(rows[data["detected"][rows]]) - args.pool for rows in ranges)
    print(f"{len(ranges)} people, a pool of {args.pool}, {args.count} kept, ~{probes} known probes, "
          f"{len(strangers)} strangers, {args.seeds} draws")
    print("| strategy | templates | rank-1 % | DIR @ FAR 1% | DIR, probes turned >= 20° | own similarity | "
          "DIR vs first (paired) | own similarity vs first (paired) |")
    print("|---|---|---|---|---|---|---|---|")
    for strategy, rows in results.items():
        def cell(key: str, scale: float = 100.0, digits: int = 2, against: str | None = None, rows=rows) -> str:
            values = np.array([r[key] for r in rows]) * scale
            if against is not None:
                values = values - np.array([r[key] for r in results[against]]) * scale
                return f"{values.mean():+.{digits}f} ± {values.std():.{digits}f}"
            return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"
        print(f"| {strategy} | {np.mean([r['templates'] for r in rows]):.1f} | {cell('rank1')} | {cell('dir_at_1pct')} | "
              f"{cell('dir_turned')} | {cell('own_similarity', 1.0, 4)} | {cell('dir_at_1pct', against='first')} | "
              f"{cell('own_similarity', 1.0, 4, against='first')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
