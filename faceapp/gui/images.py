"""Converting numpy BGR images and encoded thumbnails to Qt images.

``QImage(array.data, ...)`` only borrows the array's memory, so every conversion here
ends in ``.copy()``: the QImage owns its pixels and may cross threads or outlive the
array. QImage (unlike QPixmap) may be made on any thread.
"""

from __future__ import annotations

import zlib

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap


def qimage_from_bgr(image: np.ndarray) -> QImage:
    """A QImage owning a copy of a BGR uint8 ``(H, W, 3)`` array's pixels."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    return QImage(image.data, width, height, image.strides[0], QImage.Format.Format_BGR888).copy()


def qimage_from_bytes(data: bytes | None) -> QImage | None:
    """Decode PNG/JPEG bytes (a gallery thumbnail); None if absent or undecodable."""
    if not data:
        return None
    image = QImage()
    return image if image.loadFromData(data) else None


def icon_from_bytes(data: bytes | None, size: int = 64) -> QIcon:
    """An icon from thumbnail bytes (an empty icon when there is none)."""
    image = qimage_from_bytes(data)
    if image is None:
        return QIcon()
    return QIcon(QPixmap.fromImage(image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)))


def icon_from_bgr(image: np.ndarray, size: int = 64) -> QIcon:
    """An icon from a BGR array (e.g. an aligned face)."""
    qimage = qimage_from_bgr(image).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return QIcon(QPixmap.fromImage(qimage))


def initials_pixmap(name: str, size: int = 64) -> QPixmap:
    """A face-free stand-in for a thumbnail: the person's initials on a colour taken
    from the name (embeddings-only galleries store no face images). GUI thread only."""
    from faceapp.media.privacy import initials

    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    hue = zlib.crc32(str(name).encode("utf-8")) % 360
    painter = QPainter(pixmap)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor.fromHsv(hue, 110, 170))
        painter.drawEllipse(1, 1, size - 2, size - 2)
        font = QFont()
        font.setPixelSize(max(6, int(size * 0.4)))
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(QRect(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, initials(name))
    finally:
        painter.end()
    return pixmap


def initials_icon(name: str, size: int = 64) -> QIcon:
    return QIcon(initials_pixmap(name, size))
