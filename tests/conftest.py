"""Shared test fixtures.

Tests that need the shared photos (``../shared/fixtures/faces``, or ``FACEAPP_FIXTURES``)
skip with a reason when they are absent on a user's clone, and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require_path(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; else skip (or fail under CI=true) with a reason."""
    if path.exists():
        return path
    message = f"{what} not found at {path}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(f"{message}; set the environment variable to its location to run this test")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared photos: obama/, biden/, groups/ (FACEAPP_FIXTURES overrides)."""
    from faceapp.shared_data import fixtures_dir as locate

    return require_path(locate(), "shared face fixtures (FACEAPP_FIXTURES)")


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    from faceapp.shared_data import lfw_dir as locate

    return require_path(locate(), "LFW data (FACEAPP_LFW_DIR)")


@pytest.fixture(scope="session", autouse=True)
def isolated_user_dirs(tmp_path_factory):
    """Keep tests away from the user's real gallery and settings; share one model cache."""
    root = tmp_path_factory.mktemp("user")
    saved = {k: os.environ.get(k) for k in ("FACEAPP_GALLERY", "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    os.environ["FACEAPP_GALLERY"] = str(root / "default-gallery.sqlite3")
    os.environ["XDG_DATA_HOME"] = str(root / "data")
    os.environ["XDG_CONFIG_HOME"] = str(root / "config")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def recognizer():
    """One loaded pipeline (no gallery) for the whole session; CPU."""
    from faceapp.pipeline import PipelineConfig, Recognizer

    return Recognizer.create(PipelineConfig(device="cpu"))


@pytest.fixture(scope="session")
def fixture_video(fixtures_dir, tmp_path_factory):
    """A 640x480 video made from the fixture photos, with who is visible per frame."""
    from faceapp.fixture_video import make_fixture_video

    return make_fixture_video(fixtures_dir, tmp_path_factory.mktemp("video") / "fixtures.avi")
