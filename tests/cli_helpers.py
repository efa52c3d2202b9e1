"""Running the ``faceapp`` command line in tests: as a real process, or in-process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

#: Variables that would hide what a user sees; the CLI must quieten libraries itself.
NOISE_SETTINGS = ("TF_CPP_MIN_LOG_LEVEL", "OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL", "ORT_LOG_LEVEL")


def run_cli(*args, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in NOISE_SETTINGS}
    env.pop("FACEAPP_MODELS", None)
    return subprocess.run(
        [sys.executable, "-m", "faceapp", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def run_here(capfd, *args) -> subprocess.CompletedProcess:
    """Run ``faceapp.cli.main.main`` in this process (fast; same code path as the command,
    minus the interpreter start). ``capfd`` captures file descriptors, so output from
    native libraries would show up too."""
    import cv2

    from faceapp.cli.main import main

    # OpenCV read OPENCV_LOG_LEVEL (which the CLI sets) when this process loaded it.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    capfd.readouterr()
    try:
        code = main([str(a) for a in args])
    finally:
        cv2.utils.logging.setLogLevel(level)
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["faceapp", *map(str, args)], code, out, err)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def file_digest(path: Path) -> str | None:
    """sha256 of the file, or None when it does not exist (it must not be created)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """The one error line of a refused command (asserting its shape and words)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("faceapp: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
