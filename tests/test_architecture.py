"""Architecture rules: the core never imports Qt, and importing it is cheap."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import faceapp

CORE_MODULES = sorted(
    f"faceapp.{m.name}" for m in pkgutil.walk_packages(faceapp.__path__, onerror=lambda name: None)
    if not m.name.startswith("gui") and m.name != "__main__"
)


def test_core_never_imports_qt():
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'PyQt')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core modules pulled in Qt: {result.stdout}"


def test_importing_the_package_and_cli_is_light():
    code = (
        "import sys, faceapp, faceapp.cli.main, faceapp.recognition.pipeline, faceapp.storage.gallery\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'PySide6', 'matplotlib', 'sklearn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"heavy modules imported at import time: {result.stdout}"
