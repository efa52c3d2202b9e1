"""Does low-light enhancement help? (issue 17's mitigations; the README's table under
"Degraded images and head pose").

    python tools/measure_low_light.py VARIANT [--pairs 1500] [--lfw DIR]

Runs ``faceapp eval robustness``'s low-light rows (severities 1-3, plus the clean row) on
``--pairs`` LFW pairs, with one candidate enhancement applied to images darker than a mean
grey of :data:`DARK`, and prints accuracy (and the images where no face was detected):

* ``none``: as the app runs today;
* ``gamma`` / ``clahe``: the image brightened (gamma to a mean grey of 110) or contrast-
  equalised (CLAHE on the L channel of Lab), before detection and embedding;
* ``det_gamma`` / ``det_clahe``: the same, for the detector only (aligned and embedded
  from the original image);
* ``retry_gamma`` / ``retry_clahe``: detect on the original; only when a dark image shows
  no face, detect again on the enhanced copy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.evaluation import robustness_embed
from faceapp.evaluation.lfw import load_lfw
from faceapp.evaluation.robustness import RobustnessConfig, run_robustness
from faceapp.paths import lfw_dir
from faceapp.recognition.pipeline import PipelineConfig, Recognizer

DARK = 80.0
VARIANTS = ("none", "gamma", "clahe", "det_gamma", "det_clahe", "retry_gamma", "retry_clahe")


def luminance(image: np.ndarray) -> float:
    import cv2

    return float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean())


def gamma(image: np.ndarray) -> np.ndarray:
    """A dark BGR image brightened to a mean grey of about 110 (others unchanged)."""
    import cv2

    mean = luminance(image)
    if mean >= DARK:
        return image
    exponent = np.log(110 / 255) / np.log(max(mean, 1.0) / 255)
    return cv2.LUT(image, np.clip(((np.arange(256) / 255) ** exponent) * 255, 0, 255).astype(np.uint8))


def clahe(image: np.ndarray) -> np.ndarray:
    """A dark BGR image with CLAHE on its Lab lightness (others unchanged)."""
    import cv2

    if luminance(image) >= DARK:
        return image
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def install(variant: str, recognizer: Recognizer) -> None:
    """Make the robustness run's FaceApp pipeline use ``variant``."""
    if variant == "none":
        return
    enhance = gamma if variant.endswith("gamma") else clahe
    plain = recognizer.detect
    if variant.startswith("det_"):
        recognizer.detect = lambda image, video=False: plain(enhance(image), video)
    elif variant.startswith("retry_"):
        def retry(image, video=False):
            found = plain(image, video)
            return found if found or luminance(image) >= DARK else plain(enhance(image), video)

        recognizer.detect = retry
    else:
        embed = robustness_embed.FaceAppPipeline.embed
        robustness_embed.FaceAppPipeline.embed = lambda self, images: embed(self, [enhance(i) for i in images])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--pairs", type=int, default=1500)
    parser.add_argument("--lfw", type=Path, default=lfw_dir())
    args = parser.parse_args(argv)
    recognizer = Recognizer.create(PipelineConfig(device="cpu"))
    install(args.variant, recognizer)
    report = run_robustness(recognizer, load_lfw(args.lfw),
                            RobustnessConfig(conditions=("low_light",), severities=(1, 2, 3), pairs=args.pairs))
    for row in report["rows"]:
        mine = row["faceapp"]
        print(f"{args.variant:<12} {row['condition']:<10} {row['severity']}  accuracy {mine['accuracy_mean']:.2%} "
              f"± {mine['accuracy_std']:.2%}  at clean thresholds {mine['at_clean_thresholds']['accuracy']:.2%}  "
              f"no face {mine['no_face']}/{mine['images']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
