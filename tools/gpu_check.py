"""GPU check for the embedding network (run it on a machine with an NVIDIA GPU).

Reports the device TensorFlow uses, the embedding speed on the GPU (float32 and mixed
precision, several batch sizes) against the CPU runtime in the same run, and how far
the GPU embeddings are from the CPU ones (float32 must agree to 1e-4; mixed precision
is used by the app only if it stays within 1e-3).

    python tools/gpu_check.py [--json OUT.json] [--allow-cpu]

``--allow-cpu`` runs the same measurements with TensorFlow on the CPU when no GPU is
present (to test the script itself); without it, no GPU is an error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np

logger = logging.getLogger("gpu_check")


def aligned_faces(count: int) -> np.ndarray:
    """Real aligned fixture faces when the shared photos exist, else smoothed noise."""
    from faceapp.paths import fixtures_dir

    crops = []
    folder = fixtures_dir()
    if folder.is_dir():
        from faceapp.media.imageio import read_image
        from faceapp.recognition.pipeline import PipelineConfig, Recognizer

        recognizer = Recognizer.create(PipelineConfig(device="cpu"))
        for path in sorted(folder.glob("*/*.jpg")):
            image = read_image(path)
            crops += [f.image for f in recognizer.align(image, recognizer.detect(image))]
    if not crops:
        rng = np.random.default_rng(0)
        crops = list(rng.integers(0, 255, (8, 112, 112, 3), dtype=np.uint8))
    reps = -(-count // len(crops))
    return np.concatenate([np.stack(crops)] * reps)[:count]


def per_face_ms(embed, faces: np.ndarray, batch: int, repeats: int = 5) -> float:
    chunk = faces[:batch]
    embed(chunk)
    embed(chunk)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        embed(chunk)
        timings.append((time.perf_counter() - start) * 1e3 / len(chunk))
    return float(np.median(timings))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the report here")
    parser.add_argument("--allow-cpu", action="store_true", help="measure with TensorFlow on the CPU if no GPU is present")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from faceapp.accel.device import import_tensorflow
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import Embedder

    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    report: dict = {"tensorflow": tf.__version__, "gpus": [g.name for g in gpus]}
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        report["gpu_name"] = details.get("device_name", "?")
    elif not args.allow_cpu:
        print("no GPU visible to TensorFlow; nothing to check (use --allow-cpu to test the script)", file=sys.stderr)
        return 1
    device = "gpu" if gpus else "cpu"
    card = load_card()
    faces = aligned_faces(256)
    cpu = Embedder(card, device="cpu")
    fp32 = Embedder(card, device=device, backend="tensorflow", precision="float32")
    mixed = Embedder(card, device=device, backend="tensorflow", precision="mixed")
    auto = Embedder(card, device=device)
    report["device_used"] = {"float32": fp32.device_name, "mixed": mixed.device_name, "app_default": auto.device_name, "cpu_reference": cpu.device_name}
    reference = cpu.embed(faces[:64])
    report["max_abs_diff_vs_cpu"] = {
        "float32": float(np.abs(fp32.embed(faces[:64]) - reference).max()),
        "mixed": float(np.abs(mixed.embed(faces[:64]) - reference).max()),
    }
    report["ms_per_face"] = {}
    for name, embedder in (("cpu_litert", cpu), (f"{device}_float32", fp32), (f"{device}_mixed", mixed)):
        report["ms_per_face"][name] = {str(b): round(per_face_ms(embedder.embed, faces, b), 4) for b in (1, 8, 64, 256)}
    best_cpu = min(report["ms_per_face"]["cpu_litert"].values())
    report["speedup_vs_cpu_best"] = {
        name: round(best_cpu / min(values.values()), 2) for name, values in report["ms_per_face"].items()
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    ok = report["max_abs_diff_vs_cpu"]["float32"] < 1e-4
    print("float32 agreement within 1e-4:", "yes" if ok else "NO")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
