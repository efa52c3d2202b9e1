"""Locations of the project's shared, read-only data (never copied into the repo).

``FACEAPP_FIXTURES`` and ``FACEAPP_LFW_DIR`` override the defaults, which are the
``shared/`` folder beside the repository checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_ROOT = Path(__file__).resolve().parents[2] / "shared"


def fixtures_dir() -> Path:
    """Photos of two people for tests: ``obama/``, ``biden/``, ``groups/``."""
    return Path(os.environ.get("FACEAPP_FIXTURES") or SHARED_ROOT / "fixtures" / "faces")


def lfw_dir() -> Path:
    """LFW images and ``pairs.txt`` (``images/NAME_NNNN.jpg``)."""
    return Path(os.environ.get("FACEAPP_LFW_DIR") or SHARED_ROOT / "data" / "lfw")


REFERENCE_SFACE_ONNX = "face_recognition_sface_2021dec.onnx"


def reference_sface_onnx() -> Path:
    """OpenCV Zoo's SFace ONNX file, used only as a reference by tests and benchmarks.

    ``FACEAPP_SFACE_ONNX``, else ``<repo>/.cache/reference/`` where
    ``tools/fetch_reference_model.sh`` puts it. The app itself never needs it.
    """
    override = os.environ.get("FACEAPP_SFACE_ONNX")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / ".cache" / "reference" / REFERENCE_SFACE_ONNX
