"""What the tests that run ``faceapp train`` in child processes share: the child's
environment and the arguments of a tiny run on 6 LFW people."""

from __future__ import annotations

import os
from pathlib import Path


def training_env(threads: int = 1) -> dict[str, str]:
    """The environment of a training child: CPU only, ``threads`` TensorFlow/OpenMP threads,
    no inherited ``TF_CONFIG``, TensorFlow's native notes off."""
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env.update({"CUDA_VISIBLE_DEVICES": "", "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1",
                "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"})
    return env


def tiny_train_args(lfw_dir: Path, out: Path, cache: Path, epochs: int) -> list[str]:
    """``train`` arguments of a run of ``epochs`` one-step epochs on 6 LFW people, 4 photos each."""
    return ["train", str(lfw_dir), "--out", str(out), "--min-images", "4", "--max-images", "4", "--max-people", "6",
            "--val-fraction", "0.34", "--cache-dir", str(cache), "--epochs", str(epochs), "--steps-per-epoch", "1",
            "--batch-size", "4", "--freeze", "13", "--dropout", "0", "--no-augment", "--val-pairs", "24",
            "--patience", "5", "--lr", "1e-3", "--device", "cpu", "-q"]
