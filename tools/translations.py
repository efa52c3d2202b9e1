"""Keep the interface's translations: collect the GUI's strings into the ``.ts`` sources
(``pyside6-lupdate``) and compile them into the ``.qm`` files the app loads
(``pyside6-lrelease``). Both tools come with PySide6.

    python tools/translations.py update    # refresh assets/translations/*.ts from the code
    python tools/translations.py release   # compile them to .qm (commit both)
    python tools/translations.py check     # fail if a .ts has unfinished strings or a stale .qm

Translators edit the ``.ts`` files (Qt Linguist, or any XML editor), then run ``release``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "assets" / "translations"
LANGUAGES = ("zh_CN",)


def tool(name: str) -> str:
    """The PySide6 command ``name`` (``pyside6-lupdate``...), else the Qt binary inside PySide6."""
    found = shutil.which(f"pyside6-{name}")
    if found:
        return found
    import PySide6

    binary = Path(PySide6.__file__).parent / name
    if binary.is_file():
        return str(binary)
    sys.exit(f"{name} not found: install PySide6 (it ships pyside6-{name})")


def sources() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "faceapp" / "gui").rglob("*.py"))


def update() -> None:
    TRANSLATIONS.mkdir(parents=True, exist_ok=True)
    for language in LANGUAGES:
        ts = TRANSLATIONS / f"faceapp_{language}.ts"
        subprocess.run([tool("lupdate"), "-no-obsolete", "-locations", "none", *sources(), "-ts", str(ts.relative_to(ROOT))],
                       cwd=ROOT, check=True)


def release() -> None:
    for ts in sorted(TRANSLATIONS.glob("faceapp_*.ts")):
        subprocess.run([tool("lrelease"), str(ts), "-qm", str(ts.with_suffix(".qm"))], cwd=ROOT, check=True)


def unfinished(ts: Path) -> list[str]:
    """The source strings of ``ts`` without a finished translation."""
    missing = []
    for message in ElementTree.parse(ts).getroot().iter("message"):
        translation = message.find("translation")
        source = message.findtext("source") or ""
        if translation is None or translation.get("type") in ("unfinished", "vanished", "obsolete") or not (translation.text or "").strip():
            if translation is not None and translation.find("numerusform") is not None:
                continue
            missing.append(source)
    return missing


def check() -> int:
    problems = []
    for ts in sorted(TRANSLATIONS.glob("faceapp_*.ts")):
        missing = unfinished(ts)
        if missing:
            problems.append(f"{ts.name}: {len(missing)} unfinished, e.g. {missing[0]!r}")
        qm = ts.with_suffix(".qm")
        with tempfile.TemporaryDirectory() as scratch:
            fresh = Path(scratch) / qm.name
            subprocess.run([tool("lrelease"), "-silent", str(ts), "-qm", str(fresh)], check=True)
            if not qm.is_file() or qm.read_bytes() != fresh.read_bytes():
                problems.append(f"{qm.name} does not match {ts.name}: run release")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("update", "release", "check"))
    args = parser.parse_args(argv)
    if args.action == "update":
        update()
    elif args.action == "release":
        release()
    else:
        return check()
    return 0


if __name__ == "__main__":
    sys.exit(main())
