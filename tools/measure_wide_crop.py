"""How closely faces cut again from the stored wide crop match the live ones.

    python tools/measure_wide_crop.py [--lfw DIR] [--images 300] [--seed 0]

For ``--images`` random LFW images and every fixture photo, the most confident YuNet face
is cut live (the 112 ArcFace crop, dlib's chip from the landmarks) and as the gallery
stores it (the 224 wide crop of :mod:`faceapp.vision.face_crop`, through JPEG 90), then
cut again from the stored crop. Prints the cosine of each network's embeddings of the two
(mean, 1st percentile, worst), beside what the 112 JPEG thumbnail stored before gave.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _jpeg(image: np.ndarray) -> np.ndarray:
    import cv2

    from faceapp.media.imageio import encode_jpeg

    return cv2.imdecode(np.frombuffer(encode_jpeg(image), np.uint8), cv2.IMREAD_COLOR)


def main() -> int:
    from faceapp.media.imageio import read_image
    from faceapp.paths import fixtures_dir, lfw_dir
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer
    from faceapp.vision.alignment import align_face
    from faceapp.vision.dlib_align import dlib_chip
    from faceapp.vision.face_crop import chip_from_wide, tight_from_wide, wide_crop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=lfw_dir())
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recognizer = Recognizer.create(PipelineConfig(model_dir="accurate", device="cpu"))
    sface, dlib = recognizer.embedder.members
    paths = sorted((args.lfw / "images").glob("*.jpg"))
    random.Random(args.seed).shuffle(paths)
    paths = paths[: args.images] + sorted(fixtures_dir().glob("*/*.jpg"))
    live_tight, old_tight, new_tight, live_chip, new_chip = [], [], [], [], []
    for path in paths:
        image = read_image(path)
        found = recognizer.detect(image)
        if not found:
            continue
        face = max(found, key=lambda d: d.score)
        stored = _jpeg(wide_crop(image, face.landmarks))
        tight = align_face(image, face.landmarks)
        live_tight.append(tight)
        old_tight.append(_jpeg(tight))
        new_tight.append(tight_from_wide(stored))
        live_chip.append(dlib_chip(image, face.landmarks))
        new_chip.append(chip_from_wide(stored))
    rows = [("SFace, 112 JPEG thumbnail (before)", sface, live_tight, old_tight),
            ("SFace, 112 crop cut from the wide crop", sface, live_tight, new_tight),
            ("dlib, chip cut from the wide crop", dlib, live_chip, new_chip)]
    print(f"{len(live_tight)} faces ({min(args.images, len(paths))} LFW images + the fixture photos)")
    for label, network, live, again in rows:
        cosine = (network.embed(np.stack(live)) * network.embed(np.stack(again))).sum(axis=1)
        print(f"{label:<42} mean {cosine.mean():.4f}  1st percentile {np.percentile(cosine, 1):.4f}  worst {cosine.min():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
