"""Render the app icon (assets/faceapp.svg) to the PNG sizes desktops ask for
(assets/icons/faceapp-<size>.png), with Qt's own SVG renderer.

    QT_QPA_PLATFORM=offscreen python tools/render_icons.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 -- Qt needs one
    renderer = QSvgRenderer(str(ROOT / "assets" / "faceapp.svg"))
    if not renderer.isValid():
        print("assets/faceapp.svg is not a valid SVG", file=sys.stderr)
        return 1
    out = ROOT / "assets" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out / f"faceapp-{size}.png"
        if not image.save(str(path)):
            print(f"cannot write {path}", file=sys.stderr)
            return 1
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
