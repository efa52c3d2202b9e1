"""Architecture rules: the layers (import-linter contracts in ``pyproject.toml``), the
core never importing Qt, cheap imports, and small modules."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import faceapp

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 500
MAX_LOOSE_MODULES = 12

CORE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(faceapp.__path__, prefix="faceapp.", onerror=lambda name: None)
    if not m.name.startswith(("faceapp.gui", "faceapp.cli")) and m.name != "faceapp.__main__"
)


def _layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layered = next(c for c in config["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in layered["layers"] for name in layer.split("|")]


def test_import_contracts_are_kept():
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_top_level_module_has_a_layer():
    """A new top-level module or package must be placed in the layers contract."""
    top = {f"faceapp.{m.name}" for m in pkgutil.iter_modules(faceapp.__path__)} - {"faceapp.__main__"}
    assert top - set(_layers()) == set(), "add these to [tool.importlinter] layers in pyproject.toml"


def test_few_loose_modules_and_no_long_files():
    loose = [p for p in (REPO / "faceapp").glob("*.py") if p.name != "__init__.py"]
    assert len(loose) <= MAX_LOOSE_MODULES, sorted(p.name for p in loose)
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=False).stdout.split()
    files = [REPO / name for name in tracked] or list(REPO.glob("faceapp/**/*.py"))
    long = {str(p.relative_to(REPO)): n for p in files if p.is_file() and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (over {MAX_LINES} lines)"


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
        "from faceapp.cli.main import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'PySide6', 'matplotlib', 'sklearn', 'cv2') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"heavy modules imported at import time: {result.stdout}"
