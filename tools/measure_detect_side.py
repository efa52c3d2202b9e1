"""Which faces does detection at a working resolution still find? (issue 16; the README's
"Detection at a working resolution").

    python tools/measure_detect_side.py [--lfw DIR] [--fixtures DIR] [--frames 60] [--sides 0,1280,960,800,640]

Two kinds of 1280x720 frames:

* held-out-style scenes: 6 LFW photos (people who are not the fixture people) pasted into
  a frame at random places, scaled so that their faces are 32, 40, 48, 64, 96 and 128 px
  wide, one of each, on a blurred background made from another LFW photo;
* the fixture video rendered at 1280x720 (the two fixture people, near and far).

For each ``--detect-side`` (0: full resolution), with our detector: the share of the
pasted faces found (a detection whose centre is within a quarter of the face's width of
the true centre), per face width, and the number of faces found in the fixture video;
then ms per frame (median of alternating rounds).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceapp.evaluation.speed import alternate
from faceapp.paths import fixtures_dir, lfw_dir
from faceapp.vision.detection import DetectorConfig
from faceapp.vision.tf_detector import TfYuNetDetector, weights_path

logger = logging.getLogger("measure_detect_side")
WIDTHS = (32, 40, 48, 64, 96, 128)
FRAME = (1280, 720)


def scenes(lfw: Path, count: int, seed: int = 0):
    """``count`` (frame, [(centre x, centre y, face width)]) held-out-style scenes."""
    import cv2

    rng = np.random.default_rng(seed)
    reference = TfYuNetDetector(weights_path(), DetectorConfig(min_face_size=0), device="cpu")
    photos = []
    for path in sorted(lfw.rglob("*.jpg"))[::17]:
        image = cv2.imread(str(path))
        found = reference.detect(image)
        if len(found) >= 1:
            photos.append((image, found[0]))
        if len(photos) >= 6 * count + count:
            break
    out = []
    for n in range(count):
        background = cv2.GaussianBlur(cv2.resize(photos[n][0], FRAME), (0, 0), 25)
        frame = background.copy()
        truth = []
        cells = rng.permutation(8)[: len(WIDTHS)]  # a 4x2 grid of 320x360 cells, one face each
        for width, cell in zip(WIDTHS, cells, strict=True):
            image, face = photos[count + n * len(WIDTHS) + len(truth)]
            scale = width / face.box[2]
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            h, w = small.shape[:2]
            x0 = int(cell % 4 * 320 + rng.integers(0, max(1, 320 - w)))
            y0 = int(cell // 4 * 360 + rng.integers(0, max(1, 360 - h)))
            h, w = min(h, 720 - y0), min(w, 1280 - x0)
            frame[y0 : y0 + h, x0 : x0 + w] = small[:h, :w]
            cx, cy = (face.box[0] + face.box[2] / 2) * scale + x0, (face.box[1] + face.box[3] / 2) * scale + y0
            truth.append((cx, cy, width))
        out.append((frame, truth))
    return out


def found_share(detector, scene_list) -> dict[int, float]:
    hits = {w: 0 for w in WIDTHS}
    for frame, truth in scene_list:
        found = detector.detect(frame, video=True)
        for cx, cy, width in truth:
            hits[width] += any(abs(d.box[0] + d.box[2] / 2 - cx) < width / 4 and abs(d.box[1] + d.box[3] / 2 - cy) < width / 4
                               for d in found)
    return {w: hits[w] / len(scene_list) for w in WIDTHS}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=lfw_dir())
    parser.add_argument("--fixtures", type=Path, default=fixtures_dir())
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--sides", default="0,1280,960,800,640")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from faceapp.media.fixture_video import render_frames

    held_out = scenes(args.lfw, args.frames)
    fixture = [frame for frame, _ in render_frames(args.fixtures, size=FRAME)]
    sides = [int(s) for s in args.sides.split(",")]
    detectors = {side: TfYuNetDetector(weights_path(), DetectorConfig(work_side=side), device="cpu") for side in sides}
    print(f"{len(held_out)} held-out-style scenes of 1280x720 ({len(WIDTHS)} LFW faces each), "
          f"{len(fixture)} fixture-video frames of 1280x720")
    print(f"{'--detect-side':>13}  " + "  ".join(f"{w:>4} px" for w in WIDTHS) + f"  {'fixture faces':>13}  {'ms/frame':>8}")
    timings = alternate({side: (lambda d=d: _ms(d, held_out)) for side, d in detectors.items()}, args.rounds)
    for side, detector in detectors.items():
        share = found_share(detector, held_out)
        fixture_faces = sum(len(detector.detect(f, video=True)) for f in fixture)
        print(f"{side or 'full':>13}  " + "  ".join(f"{share[w]:>7.3f}" for w in WIDTHS)
              + f"  {fixture_faces:>13}  {np.median(timings[side]):>8.2f}")
    print("(share of the pasted faces found, by face width at 1280x720; ms: median of alternating rounds)")
    return 0


def _ms(detector, scene_list) -> float:
    began = time.perf_counter()
    for frame, _ in scene_list:
        detector.detect(frame, video=True)
    return (time.perf_counter() - began) * 1e3 / len(scene_list)


if __name__ == "__main__":
    sys.exit(main())
