"""The one place that decides where the embedding network runs.

``auto`` takes the first GPU TensorFlow sees (with memory growth on, so TensorFlow does
not reserve the whole card), else the CPU. On the CPU the network runs under LiteRT
(TensorFlow's on-device runtime) with the XNNPACK kernels, which on a 2-core machine is
faster than both TensorFlow's own CPU kernels and OpenCV's DNN on the same network
(``faceapp bench`` measures all three in one run).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faceapp.errors import ModelError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class DeviceChoice:
    """Where to run: ``kind`` is "gpu" or "cpu"; ``tf_device`` e.g. "/GPU:0"."""

    kind: str
    tf_device: str
    reason: str


def nvidia_driver_present() -> bool:
    """Cheap check (no TensorFlow import) for a loaded NVIDIA driver on Linux, the only
    platform where TensorFlow's pip wheels use a GPU."""
    return sys.platform.startswith("linux") and (
        os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")
    )


def import_tensorflow():
    """Import TensorFlow. Where no NVIDIA driver exists, hide the CUDA-probing lines its
    native code prints on stderr at import (they are noise there, not errors)."""
    import importlib

    if "tensorflow" in sys.modules or nvidia_driver_present():
        return importlib.import_module("tensorflow")
    from faceapp.stdio import native_stderr_silenced

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced():
        tf = importlib.import_module("tensorflow")
        tf.config.list_logical_devices()  # starts the runtime, which probes CUDA once more
    return tf


def _list_gpus() -> list:
    # Importing TensorFlow costs seconds; skip it when no driver can possibly be there.
    if not nvidia_driver_present():
        return []
    return import_tensorflow().config.list_physical_devices("GPU")


def _enable_memory_growth(gpus: Sequence) -> None:
    tf = import_tensorflow()

    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as error:  # already initialised: harmless
            logger.debug("memory growth not changed on %s: %s", gpu, error)


def choose_device(
    requested: str = "auto",
    list_gpus: Callable[[], Sequence] = _list_gpus,
    enable_memory_growth: Callable[[Sequence], None] = _enable_memory_growth,
) -> DeviceChoice:
    """Pick the device for ``requested`` ("auto", "cpu" or "gpu")."""
    if requested not in DEVICES:
        raise ModelError(f"device must be one of {', '.join(DEVICES)}, got {requested!r}")
    if requested == "cpu":
        return DeviceChoice("cpu", "/CPU:0", "CPU requested")
    gpus = list(list_gpus())
    if gpus:
        enable_memory_growth(gpus)
        return DeviceChoice("gpu", "/GPU:0", f"{len(gpus)} GPU(s) visible to TensorFlow")
    if requested == "gpu":
        raise ModelError("a GPU was requested but TensorFlow sees none (is the CUDA build of TensorFlow installed?)")
    logger.info("no GPU visible to TensorFlow: the embedding runs on the CPU")
    return DeviceChoice("cpu", "/CPU:0", "no GPU visible to TensorFlow")
