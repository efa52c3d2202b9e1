"""``faceapp desktop-entry``: put FaceApp in the desktop's application menu (XDG).

``--install`` writes ``faceapp.desktop`` to ``$XDG_DATA_HOME/applications`` (default
``~/.local/share/applications``) with ``Exec`` set to this installation's ``faceapp``,
and the icon to ``$XDG_DATA_HOME/icons/hicolor/<size>/apps``; ``--uninstall`` removes
them. With neither, it prints the entry and where it would go.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from faceapp.errors import FaceAppError
from faceapp.files import AtomicOutput, os_error_line
from faceapp.paths import ASSETS_DIR

ENTRY = "faceapp.desktop"


def data_home() -> Path:
    """``$XDG_DATA_HOME``, else ``~/.local/share`` (the XDG Base Directory default)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def command_line() -> str:
    """How the menu starts this installation: its ``faceapp`` script, else this Python."""
    script = shutil.which("faceapp")
    if script:
        return shlex.quote(str(Path(script).resolve()))
    return f"{shlex.quote(sys.executable)} -m faceapp"


def entry_text() -> str:
    """The shipped ``assets/faceapp.desktop`` with ``Exec`` pointing at this installation."""
    try:
        lines = (ASSETS_DIR / ENTRY).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise FaceAppError(f"the desktop entry is missing from {ASSETS_DIR}: {os_error_line(error)}") from None
    return "\n".join(f"Exec={command_line()}" if line.startswith("Exec=") else line for line in lines) + "\n"


def icon_targets(root: Path) -> list[tuple[Path, Path]]:
    """``(shipped icon, where it goes)`` for every size, and the scalable SVG."""
    pairs = [(ASSETS_DIR / "faceapp.svg", root / "icons" / "hicolor" / "scalable" / "apps" / "faceapp.svg")]
    for png in sorted((ASSETS_DIR / "icons").glob("faceapp-*.png")):
        size = png.stem.split("-")[-1]
        pairs.append((png, root / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "faceapp.png"))
    return pairs


def install(root: Path) -> list[Path]:
    written = []
    try:
        for source, target in icon_targets(root):
            target.parent.mkdir(parents=True, exist_ok=True)
            with AtomicOutput(target, "wb", what="icon") as handle:
                handle.write(source.read_bytes())
            written.append(target)
        entry = root / "applications" / ENTRY
        entry.parent.mkdir(parents=True, exist_ok=True)
        with AtomicOutput(entry, "w", encoding="utf-8", what="desktop entry") as handle:
            handle.write(entry_text())
        written.append(entry)
    except OSError as error:
        raise FaceAppError(f"cannot install the desktop entry in {root}: {os_error_line(error)}") from None
    return written


def uninstall(root: Path) -> list[Path]:
    removed = []
    for target in [root / "applications" / ENTRY, *(target for _, target in icon_targets(root))]:
        if target.exists():
            try:
                target.unlink()
            except OSError as error:
                raise FaceAppError(f"cannot remove {target}: {os_error_line(error)}") from None
            removed.append(target)
    return removed


def cmd_desktop_entry(args: argparse.Namespace) -> int:
    root = data_home()
    if args.install:
        written = install(root)
        print(f"installed {root / 'applications' / ENTRY} and {len(written) - 1} icon(s): FaceApp is in the application menu")
    elif args.uninstall:
        removed = uninstall(root)
        print(f"removed {len(removed)} file(s)" if removed else "nothing to remove: the desktop entry was not installed")
    else:
        print(f"# would be installed as {root / 'applications' / ENTRY} (faceapp desktop-entry --install)")
        print(entry_text(), end="")
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``desktop-entry`` to the CLI's subparsers."""
    entry = commands.add_parser("desktop-entry", parents=[common], help="add FaceApp to the desktop's application menu (Linux, XDG)")
    group = entry.add_mutually_exclusive_group()
    group.add_argument("--install", action="store_true", help="write the menu entry and the icons under $XDG_DATA_HOME")
    group.add_argument("--uninstall", action="store_true", help="remove them again")
    entry.set_defaults(func=cmd_desktop_entry)
