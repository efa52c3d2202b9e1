"""First contact: the wheel carries the models and assets, one version number, the
desktop entry, and a first run that explains a missing display or X11 library in one
line instead of Qt aborting. (The wheel itself is built, installed into a fresh virtual
environment and used from another folder by tools/wheel_check.sh, which CI runs.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import faceapp
from faceapp.gui.platform import XCB_LIBRARIES, display_problem, install_hint

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_and_shipped_folder_is_in_the_wheel():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.relative_to(REPO).parent.parts) for p in (REPO / "faceapp").rglob("__init__.py")}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"faceapp.models": "models", "faceapp.assets": "assets"}
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for folder, patterns in (("models", data["faceapp.models"]), ("assets", data["faceapp.assets"])):
        shipped = {p for pattern in patterns for p in (REPO / folder).glob(pattern)}
        tracked = set(subprocess.run(["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True,
                                     check=False).stdout.split())
        missing = sorted(t for t in tracked if REPO / t not in shipped)
        assert not missing, f"{folder}/ files left out of the wheel: {missing}"


def test_one_version_number():
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "faceapp.__version__"}
    result = subprocess.run([sys.executable, "-m", "faceapp", "--version"], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == f"faceapp {faceapp.__version__}"


def test_the_models_and_assets_are_found_from_the_package_or_the_checkout():
    from faceapp import paths

    for folder, name in ((paths.DEFAULT_MODEL_DIR, "models"), (paths.ASSETS_DIR, "assets")):
        assert folder in (paths.PACKAGE_ROOT / name, paths.REPO_ROOT / name) and folder.is_dir()
    assert (paths.ASSETS_DIR / "faceapp.svg").is_file() and (paths.ASSETS_DIR / "faceapp.desktop").is_file()


def test_desktop_entry_install_and_uninstall(tmp_path, monkeypatch, capsys):
    from faceapp.cli.main import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert main(["desktop-entry"]) == 0
    assert "Exec=" in capsys.readouterr().out and not (tmp_path / "applications").exists()  # only shown
    assert main(["desktop-entry", "--install"]) == 0
    entry = (tmp_path / "applications" / "faceapp.desktop").read_text(encoding="utf-8")
    assert "Name=FaceApp" in entry and "Icon=faceapp" in entry
    executable = entry.split("Exec=")[1].splitlines()[0]
    assert "faceapp" in executable
    icons = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "icons").rglob("*.*"))
    assert "icons/hicolor/256x256/apps/faceapp.png" in icons and "icons/hicolor/scalable/apps/faceapp.svg" in icons
    assert main(["desktop-entry", "--uninstall"]) == 0
    assert not list(tmp_path.rglob("faceapp*"))


@pytest.mark.parametrize("environ, expected", [
    ({}, "no display"),
    ({"QT_QPA_PLATFORM": "offscreen"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, None),
])
def test_a_missing_display_is_said_plainly(environ, expected):
    problem = display_problem(environ, platform="linux")
    assert (problem is None) if expected is None else (expected in problem and "faceapp --help" in problem)
    assert display_problem({}, platform="darwin") is None


def test_the_install_hint_names_debian_and_fedora_packages():
    cursor = next(library for library in XCB_LIBRARIES if library.soname == "libxcb-cursor.so.0")
    assert install_hint([cursor]) == "sudo apt install libxcb-cursor0   (Fedora: sudo dnf install xcb-util-cursor)"


def test_no_display_in_a_real_process_is_one_line_and_status_1():
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "faceapp"], capture_output=True, text=True, env=environ, timeout=120, check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "no display" in result.stderr, result.stderr


def _library_path(soname: str) -> Path | None:
    """Where the dynamic linker finds ``soname`` (ldconfig's cache), or None."""
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        if line.strip().startswith(soname + " ") and "=>" in line:
            return Path(line.split("=>")[1].strip())
    return None


def test_a_hidden_x11_library_is_named_with_the_command_that_installs_it():
    """libxcb-cursor0 hidden in a private mount namespace (as root): the app names it and
    the apt/dnf command, and exits with status 1 before Qt could abort."""
    library = _library_path("libxcb-cursor.so.0")
    if library is None or os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI", "").lower() == "true" and library is None:
            pytest.fail("CI installs libxcb-cursor0 (.ci/run); it is missing")
        pytest.skip("needs root, unshare(1) and libxcb-cursor0 installed, to hide the library in a private mount namespace")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("this system does not allow private mount namespaces")
    target = library.resolve()
    script = f"mount --bind /dev/null {target} && exec {sys.executable} -m faceapp"
    environ = {**os.environ, "DISPLAY": ":99"}
    environ.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=environ,
                            timeout=120, check=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "libxcb-cursor0" in lines[0] and "sudo apt install" in lines[0] and "dnf" in lines[0], result.stderr


def test_the_bench_says_when_the_reference_row_is_left_out(tmp_path, capfd, fixtures_dir):
    from faceapp.cli.main import main

    missing = tmp_path / "nowhere.onnx"
    os.environ["FACEAPP_SFACE_ONNX"] = str(missing)
    try:
        assert main(["-q", "bench", "--frames", "4", "--rounds", "1", "--no-embedding", "--json"]) == 0
    finally:
        del os.environ["FACEAPP_SFACE_ONNX"]
    err = capfd.readouterr().err
    notes = [line for line in err.splitlines() if "reference" in line]
    assert len(notes) == 1 and "fetch_reference_model.sh" in notes[0] and str(missing) in notes[0]
