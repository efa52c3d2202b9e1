"""The app's icons: the window icon (assets/faceapp.svg and its PNG sizes) and the
toolbar's line icons (assets/actions/*.svg)."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from faceapp.paths import ASSETS_DIR


@cache
def app_icon() -> QIcon:
    """FaceApp's icon, every shipped size."""
    icon = QIcon()
    for png in sorted((ASSETS_DIR / "icons").glob("faceapp-*.png")):
        icon.addFile(str(png))
    if icon.isNull():
        icon = QIcon(str(ASSETS_DIR / "faceapp.svg"))
    return icon


def action_icon(name: str) -> QIcon:
    """The toolbar icon ``assets/actions/<name>.svg`` (an empty icon if it is missing)."""
    path = ASSETS_DIR / "actions" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()
