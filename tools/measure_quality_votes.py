"""Does weighing and gating views by quality give tracks better names? (issue 17; the
README's table under "Degraded images and head pose").

    python tools/measure_quality_votes.py [--lfw DIR] [--people 800] [--strangers 600] [--views 6]

A simulated live loop on LFW: each of ``--people`` people (with two photos or more) is
enrolled from their first photo; their second photo becomes a *track* of ``--views``
views, each degraded at random (one of clean and ``faceapp eval robustness``'s
conditions, severity 1-3, seeded per view), as a face walking through changing light and
motion would be. ``--strangers`` people with one photo, never enrolled, make stranger
tracks the same way. Every view is found, aligned and embedded by the app's pipeline and
matched by the same :class:`~faceapp.recognition.matching.Matcher` as the live loop
(the gallery calibrated by the default decision rule); each track's name is the app's
:class:`~faceapp.recognition.voting.NameVote` over its views, under each variant:

* ``uniform``: every view's vote weighs the same (quality 1);
* ``detector_x_size``: weighed by detector confidence x size (what the loop did before);
* ``confidence``: weighed by :func:`faceapp.vision.quality.view_quality` (the detector
  confidence on its ramp);
* ``confidence_gate``: the same, and views below
  :data:`faceapp.vision.quality.JUDGE_MIN_CONFIDENCE` name nobody (what the loop does now);
* ``gate_only``: uniform weights with the gate.

Printed per variant: over the known people's tracks, the share named rightly, wrongly and
not at all when the track ends, and the share of views at which the name shown was right
(as the track went on); over the strangers' tracks, the share given a name.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.evaluation.app_decision import split_gallery
from faceapp.evaluation.degrade import CONDITIONS, FaceRegion, degrade, image_rng
from faceapp.evaluation.ident import discover_people
from faceapp.evaluation.robustness_embed import MEASURES, FaceAppPipeline
from faceapp.media.imageio import read_image
from faceapp.paths import lfw_dir
from faceapp.recognition.pipeline import PipelineConfig, Recognizer
from faceapp.recognition.voting import NameVote, Observation
from faceapp.vision.faces import FacePolicy
from faceapp.vision.quality import JUDGE_MIN_CONFIDENCE, confidence_quality

VARIANTS = ("uniform", "detector_x_size", "confidence", "confidence_gate", "gate_only")


def embed(pipeline: FaceAppPipeline, images: list[np.ndarray]):
    parts = [pipeline.embed(images[i : i + 64]) for i in range(0, len(images), 64)]
    return (np.concatenate([p.embeddings for p in parts]), np.concatenate([p.detected for p in parts]),
            np.concatenate([p.measures for p in parts]), np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.landmarks for p in parts]))


def vote(variant: str, names: list[str | None], similarities: np.ndarray, thresholds: np.ndarray,
         measures: np.ndarray, truth: str | None) -> tuple[str | None, float]:
    """The track's name at its end, and the share of its views at which the shown name was ``truth``."""
    ballot = NameVote()
    confidence = measures[:, MEASURES.index("detector_score")]
    size = measures[:, MEASURES.index("face_size")]
    right = 0
    for k, name in enumerate(names):
        gated = variant in ("confidence_gate", "gate_only") and confidence[k] < JUDGE_MIN_CONFIDENCE
        if not gated:
            quality = {"uniform": 1.0, "gate_only": 1.0, "detector_x_size": confidence[k] * min(1.0, size[k] / 120.0)}.get(
                variant, float(confidence_quality(confidence[k])))
            ballot.add(Observation(name, float(similarities[k]), quality, float(thresholds[k])))
        right += ballot.name == truth and ballot.decided
    return (ballot.name if ballot.decided else None), right / max(len(names), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=lfw_dir())
    parser.add_argument("--people", type=int, default=800)
    parser.add_argument("--strangers", type=int, default=600)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from tqdm import tqdm

    rng = np.random.default_rng(args.seed)
    people = discover_people(args.lfw)
    known = [n for n, p in people.items() if len(p) >= 2]
    known = sorted(known[i] for i in rng.permutation(len(known))[: args.people])
    singles = [n for n, p in people.items() if len(p) == 1]
    strangers = sorted(singles[i] for i in rng.permutation(len(singles))[: args.strangers])
    recognizer = Recognizer.create(PipelineConfig(device="cpu"))
    pipeline = FaceAppPipeline(recognizer, FacePolicy(no_face="reject"))
    gallery_emb, gallery_found, *_ = embed(pipeline, [read_image(people[n][0]) for n in known])
    enrolled = [n for n, found in zip(known, gallery_found) if found]
    rows = np.flatnonzero(gallery_found)
    matcher = recognizer.matcher_for(split_gallery(gallery_emb, rows, np.array(enrolled), recognizer.embedder.model_id))
    tracks = [(n, people[n][1], n) for n in enrolled] + [(n, people[n][0], None) for n in strangers]
    conditions = ("clean", *CONDITIONS)
    results = {v: {"right": 0, "wrong": 0, "none": 0, "shown_right": [], "stranger_named": 0} for v in VARIANTS}
    known_tracks = stranger_tracks = views_seen = views_gated = 0
    for name, path, truth in tqdm(tracks, desc="tracks", unit="track"):
        clean = read_image(path)
        _, found, _, box, landmarks = embed(pipeline, [clean])
        if not found[0]:
            continue
        region = FaceRegion(tuple(float(v) for v in box[0]), landmarks[0])
        images = []
        for k in range(args.views):
            pick = image_rng(args.seed, "track", k, path.name)
            condition = conditions[int(pick.integers(len(conditions)))]
            severity = int(pick.integers(1, 4))
            images.append(clean if condition == "clean" else
                          degrade(clean, condition, severity, image_rng(args.seed, condition, severity, f"{path.name}/{k}"), region))
        embeddings, detected, measures, _, _ = embed(pipeline, images)
        if not detected.any():
            continue
        embeddings, measures = embeddings[detected], measures[detected]
        matches = matcher.match(embeddings, unique=False)
        names = [m.name for m in matches]
        similarities = np.array([m.similarity for m in matches])
        thresholds = np.array([m.threshold for m in matches])
        views_seen += len(names)
        views_gated += int((measures[:, MEASURES.index("detector_score")] < JUDGE_MIN_CONFIDENCE).sum())
        known_tracks += truth is not None
        stranger_tracks += truth is None
        for variant in VARIANTS:
            final, shown = vote(variant, names, similarities, thresholds, measures, truth)
            entry = results[variant]
            if truth is None:
                entry["stranger_named"] += final is not None
            else:
                entry["right" if final == truth else "none" if final is None else "wrong"] += 1
                entry["shown_right"].append(shown)
    print(f"{known_tracks} known tracks, {stranger_tracks} stranger tracks, {args.views} views each "
          f"({views_seen} faces detected; {100 * views_gated / max(views_seen, 1):.1f}% below the gate "
          f"{JUDGE_MIN_CONFIDENCE}), seed {args.seed}")
    print("| variant | named rightly % | wrongly % | not named % | views showing the right name % | strangers named % |")
    print("|---|---|---|---|---|---|")
    for variant, entry in results.items():
        print(f"| {variant} | {100 * entry['right'] / known_tracks:.2f} | {100 * entry['wrong'] / known_tracks:.2f} | "
              f"{100 * entry['none'] / known_tracks:.2f} | {100 * np.mean(entry['shown_right']):.2f} | "
              f"{100 * entry['stranger_named'] / max(stranger_tracks, 1):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
