"""The live loop with a large gallery (issue 15): frames per second and per-frame matching
time of ``recognizer.process`` with a 1M-template gallery against a 1k one, in alternating rounds.

    python tools/bench_live_gallery.py --big G1M.sqlite3 --small G1K.sqlite3 [--video FILE]
                                       [--frames 100] [--rounds 5] [--exact] [--enroll] [--fresh-index]

Galleries: ``tools/make_large_gallery.py`` (both hold the two fixture people, so the
fixture video's faces are named). Each round runs every pipeline once over the same
decoded frames (A B C, C B A, ...); a pipeline's speed against the 1k gallery's is the
median of the per-round fps ratios (:mod:`faceapp.evaluation.speed`). Tracking on (the
app's live loop) and off (every face embedded and matched in every frame: the worst case
for matching). ``--exact`` adds the big gallery matched without the index (one matrix
product per call). ``--enroll`` then enrols one more person in the big gallery and
processes frames while its matcher is rebuilt in the background: how long the rebuild
takes and how slow the frames meanwhile are. ``--fresh-index`` first deletes the big
gallery's search index, so that its first matcher is exact while the index is built on a
thread: how long until the indexed matcher serves, frames processed meanwhile. Startup
(the first matcher: reading the gallery, calibrating, loading the index) is timed too.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.evaluation import speed
from faceapp.recognition.indexed import IndexedMatcher
from faceapp.recognition.live import Tracking
from faceapp.recognition.pipeline import PipelineConfig, Recognizer
from faceapp.storage.gallery import Gallery


def _recognizer(base: Recognizer, gallery: Gallery, **kwargs) -> tuple[Recognizer, float]:
    """A recognizer sharing ``base``'s models, and how long its first matcher took."""
    made = Recognizer(base.card, base.detector, base.embedder, base.decision, gallery, **kwargs)
    began = time.perf_counter()
    made.matcher()
    return made, time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=Path, required=True)
    parser.add_argument("--small", type=Path, required=True)
    parser.add_argument("--video", type=Path, help="default: one made from the fixture photos (640x480)")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--exact", action="store_true", help="also the big gallery without its index")
    parser.add_argument("--enroll", action="store_true", help="enrol someone in the big gallery and time the rebuild")
    parser.add_argument("--fresh-index", action="store_true",
                        help="delete the big gallery's search index first; time its build on a thread during frames")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base = Recognizer.create(PipelineConfig(device="cpu"))
    with tempfile.TemporaryDirectory() as scratch:
        video = args.video
        if video is None:
            from faceapp.media.fixture_video import make_fixture_video
            from faceapp.paths import fixtures_dir

            video = make_fixture_video(fixtures_dir(), Path(scratch) / "fixtures.avi").path
        frames = speed.read_frames(video, args.frames)
    if args.fresh_index:
        from faceapp.files import search_index_files

        for file in search_index_files(args.big):
            file.unlink(missing_ok=True)
    with Gallery(args.small) as small_gallery, Gallery(args.big) as big_gallery:
        small, small_s = _recognizer(base, small_gallery)
        big, big_s = _recognizer(base, big_gallery)
        if args.fresh_index:
            print(f"first matcher without a saved index: {big_s:.1f} s ({type(big.matcher()).__name__})")
            _frames_until(big, frames, lambda: isinstance(big.matcher(), IndexedMatcher),
                          "the index was built on a thread and the indexed matcher serves")
        templates = {"small": small.matcher().template_count, "big": big.matcher().template_count}
        print(f"first matcher: {templates['small']:,} templates {small_s:.1f} s ({type(small.matcher()).__name__}), "
              f"{templates['big']:,} templates {big_s:.1f} s ({type(big.matcher()).__name__})")
        chosen = {f"{templates['small']:,} templates": small, f"{templates['big']:,} templates": big}
        if args.exact:
            exact, exact_s = _recognizer(base, big_gallery, index_min_templates=10**12)
            print(f"first matcher without the index: {exact_s:.1f} s ({type(exact.matcher()).__name__})")
            chosen[f"{templates['big']:,} exact"] = exact
        pipelines = []
        for tracking in (True, False):
            for label, recognizer in chosen.items():
                process = (lambda r=recognizer: partial(r.process, tracking=Tracking())) if tracking else (lambda r=recognizer: r.process)
                pipelines.append(speed.faceapp_pipeline(f"{label}, tracking {'on' if tracking else 'off'}", process))
        reference = pipelines[0].name
        results = speed.run_pipelines(pipelines, frames, rounds=args.rounds, reference=reference)
        off_reference = next(r for r in results if r.name.endswith("off") and r.name.startswith(next(iter(chosen))))
        print(f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, {args.rounds} alternating rounds")
        print(f"{'pipeline':<40} {'fps':>6} {'vs 1k':>7} {'faces':>6} {'match ms p50/p95':>18} {'total ms p50/p95':>18}")
        for r in results:
            same_tracking = results[0] if r.name.endswith("on") else off_reference
            ratio = speed.paired_ratio(r.round_fps, same_tracking.round_fps)
            print(f"{r.name:<40} {r.fps:>6.1f} {ratio:>6.2f}x {r.faces:>6} "
                  f"{r.ms['match'].median_ms:>8.2f} / {r.ms['match'].p95_ms:<7.2f} {r.ms['total'].median_ms:>8.2f} / {r.ms['total'].p95_ms:<7.2f}")
        if args.enroll:
            _enroll_during_live(big, big_gallery, frames)
    return 0


def _enroll_during_live(big: Recognizer, gallery: Gallery, frames: list[np.ndarray]) -> None:
    from faceapp.storage.records import NewTemplate

    rng = np.random.default_rng(int(time.time()))
    faces = rng.normal(size=(3, big.card.embedding_dim)).astype(np.float32)
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    before = big.matcher()
    gallery.add_person(f"enrolled {time.time():.0f}", [NewTemplate(f, big.embedder.model_id) for f in faces])
    _frames_until(big, frames, lambda: big.matcher() is not before,
                  "enrolled one person: the matcher was rebuilt in the background")


def _frames_until(recognizer: Recognizer, frames: list[np.ndarray], done, what: str) -> None:
    """Process ``frames`` (tracking on, over and over) until ``done()``; print how long it took."""
    tracking, laps, began = Tracking(), [], time.perf_counter()
    while True:
        for frame in frames:
            started = time.perf_counter()
            recognizer.process(frame, tracking=tracking)
            laps.append((time.perf_counter() - started) * 1e3)
            if done():
                break
        else:
            continue
        break
    took = time.perf_counter() - began
    print(f"{what} in {took:.1f} s; meanwhile {len(laps)} frames at {len(laps) / took:.1f} fps, frame ms "
          f"p50/p95/max {np.median(laps):.1f}/{np.percentile(laps, 95):.1f}/{max(laps):.1f} "
          f"(index now {len(recognizer.matcher().index):,} templates)")


if __name__ == "__main__":
    sys.exit(main())
