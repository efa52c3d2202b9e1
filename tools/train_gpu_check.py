"""Training speed check: a short ``faceapp train`` run on the CPU, one GPU and every GPU.

Each configuration runs in its own subprocess (``CUDA_VISIBLE_DEVICES`` chooses the
devices, so TensorFlow starts clean each time) and trains the whole SFace network (no
frozen stage, ArcFace head, AdamW, augmentation on) on synthetic face-sized images for
a few steps. Images per second are measured on the last epoch (the first one includes
graph tracing). Prints a table; ``--json`` saves it.

Configurations: the CPU (float32); on one GPU float32, mixed float16, and mixed float16
under ``tf.distribute.MirroredStrategy`` (one replica: the strategy's own overhead); on
every GPU (when there are several) MirroredStrategy with mixed float16, the global batch
split over the GPUs. With ``--allow-cpu`` and no GPU: the CPU in float32 and the CPU
under MirroredStrategy with mixed float16 (slow on a CPU: it only tests the path).

    python tools/train_gpu_check.py [--steps 30] [--batch-size 128] [--json OUT.json]
    python tools/train_gpu_check.py --allow-cpu     # no GPU: CPU only, tiny run (tests the script)

Without a GPU and without ``--allow-cpu`` it exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[1]))  # run from a checkout

logger = logging.getLogger("train_gpu_check")


def synthetic_faces(people: int, per_person: int, seed: int, prefix: str = "p"):
    """A FaceSet of smoothed-noise "faces" (throughput does not depend on content)."""
    import cv2

    from faceapp.training.data import FaceSet

    rng = np.random.default_rng(seed)
    count = people * per_person
    images = np.stack([
        cv2.GaussianBlur(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8), (0, 0), 2.0) for _ in range(count)
    ])
    return FaceSet(images, np.repeat(np.arange(people, dtype=np.int32), per_person),
                   tuple(f"{prefix}{i}" for i in range(people)), tuple(f"{i}.png" for i in range(count)), np.ones(count, bool))


def force_mirrored() -> None:
    """Make ``faceapp.training.loop`` use MirroredStrategy over every visible device
    (GPUs, else the CPU), even a single one (it normally does so only for several GPUs)."""
    import tensorflow as tf

    from faceapp.training import loop

    def choose_strategy():
        gpus = tf.config.list_physical_devices("GPU")
        devices = [f"/gpu:{i}" for i in range(len(gpus))] or ["/cpu:0"]
        strategy = tf.distribute.MirroredStrategy(devices)
        return strategy, f"{len(devices)} {'GPU' if gpus else 'CPU'} replica(s) (MirroredStrategy)", len(gpus)

    loop.choose_strategy = choose_strategy


def worker(steps: int, batch_size: int, epochs: int, precision: str = "auto", mirrored: bool = False) -> dict:
    """One measurement in this process (devices as CUDA_VISIBLE_DEVICES left them)."""
    import tensorflow as tf

    from faceapp.training.config import TrainConfig
    from faceapp.training.loop import train

    if mirrored:
        force_mirrored()
    gpus = tf.config.list_physical_devices("GPU")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, steps_per_epoch=steps, learning_rate=1e-4, freeze=0,
                         val_pairs=16, patience=epochs, verbose=0, precision=precision)
    with tempfile.TemporaryDirectory() as out:
        result = train(synthetic_faces(16, 8, 0), synthetic_faces(4, 4, 1, prefix="val"), config, out, seed=0)
    last = result.epoch_seconds[-1]
    return {
        "devices": result.device,
        "gpus": len(gpus),
        "precision": precision,
        "mirrored": bool(mirrored or "MirroredStrategy" in result.device),
        "batch_size": batch_size,
        "steps_per_epoch": steps,
        "first_epoch_s": round(result.epoch_seconds[0], 2),
        "last_epoch_s": round(last, 2),
        "images_per_second": round(steps * batch_size / last, 1),
    }


def run_worker(visible: str | None, steps: int, batch_size: int, epochs: int, timeout: float,
               precision: str = "auto", mirrored: bool = False) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    command = [sys.executable, __file__, "--worker", "--steps", str(steps), "--batch-size", str(batch_size), "--epochs", str(epochs),
               "--precision", precision] + (["--mirrored"] if mirrored else [])
    started = time.perf_counter()
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def gpu_count() -> int:
    """GPUs TensorFlow sees, asked in a subprocess so this process stays TF-free."""
    probe = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    done = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    try:
        return int(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-cpu", action="store_true", help="run (CPU only) when no GPU is present")
    parser.add_argument("--steps", type=int, help="steps per epoch (default: 30 on GPUs, 2 with --allow-cpu and no GPU)")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: 128 on GPUs, 8 on the CPU)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs; the last one is timed (default: 2)")
    parser.add_argument("--cpu-steps", type=int, default=3, help="steps of the CPU comparison run on a GPU machine (default: 3)")
    parser.add_argument("--timeout", type=float, default=540.0, help="seconds per configuration (default: 540)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=("auto", "float32", "mixed"), default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--mirrored", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.worker:
        print(json.dumps(worker(args.steps, args.batch_size, args.epochs, args.precision, args.mirrored)))
        return 0
    gpus = gpu_count()
    if gpus == 0 and not args.allow_cpu:
        print("no GPU visible to TensorFlow; rerun with --allow-cpu to test the script on the CPU", file=sys.stderr)
        return 2
    gpu_batch = args.batch_size or 128
    cpu_batch = args.batch_size or (8 if gpus == 0 else 16)
    results = {}
    cpu_steps = args.steps or 2 if gpus == 0 else args.cpu_steps
    results["cpu"] = run_worker("", cpu_steps, cpu_batch, args.epochs, args.timeout, precision="float32")
    if gpus == 0:
        results["cpu mirrored mixed"] = run_worker("", cpu_steps, cpu_batch, args.epochs, args.timeout, precision="mixed",
                                                   mirrored=True)
    gpu_steps = args.steps or 30
    if gpus >= 1:
        results["1 gpu fp32"] = run_worker("0", gpu_steps, gpu_batch, args.epochs, args.timeout, precision="float32")
        results["1 gpu mixed"] = run_worker("0", gpu_steps, gpu_batch, args.epochs, args.timeout, precision="mixed")
        results["1 gpu mirrored mixed"] = run_worker("0", gpu_steps, gpu_batch, args.epochs, args.timeout, precision="mixed",
                                                     mirrored=True)
    if gpus >= 2:
        results[f"{gpus} gpus mirrored mixed"] = run_worker(None, gpu_steps, gpu_batch, args.epochs, args.timeout,
                                                            precision="mixed")
    print(f"GPUs visible: {gpus}" + ("" if gpus else " (CPU only: --allow-cpu)"))
    print(f"{'run':<24} {'devices':<52} {'batch':>5} {'steps':>5} {'images/s':>9}")
    for name, row in results.items():
        if "error" in row:
            print(f"{name:<24} failed: {row['error']}")
        else:
            print(f"{name:<24} {row['devices']:<52} {row['batch_size']:>5} {row['steps_per_epoch']:>5} {row['images_per_second']:>9.1f}")
    speeds = {name: row.get("images_per_second") for name, row in results.items() if "error" not in row}
    if "cpu" in speeds and len(speeds) > 1:
        for name, speed in speeds.items():
            if name != "cpu":
                print(f"{name} / cpu: {speed / speeds['cpu']:.1f}x")
    if "1 gpu fp32" in speeds:
        for name, speed in speeds.items():
            if name.startswith(("1 gpu ", f"{gpus} gpus")) and name != "1 gpu fp32":
                print(f"{name} / 1 gpu fp32: {speed / speeds['1 gpu fp32']:.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"gpus": gpus, "results": results}, handle, indent=2)
    return 0 if all("error" not in row for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
