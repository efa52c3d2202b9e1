"""The video widget: paints the latest processed frame with its recognition overlay.

The overlay is kept as plain data (:attr:`VideoView.overlay`, a list of
:class:`OverlayItem`) so tests can read what the user sees without parsing pixels.
Painting only scales the frame's QImage (already converted on the worker thread) and
draws boxes and labels; nothing heavy runs here.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from faceapp.gui.i18n import translate
from faceapp.media.overlay import KNOWN_COLOUR, UNKNOWN_COLOUR, label_for
from faceapp.types import FrameResult

KNOWN = QColor(KNOWN_COLOUR[2], KNOWN_COLOUR[1], KNOWN_COLOUR[0])  # the core's colours are BGR
UNKNOWN = QColor(UNKNOWN_COLOUR[2], UNKNOWN_COLOUR[1], UNKNOWN_COLOUR[0])


@dataclass(frozen=True)
class OverlayItem:
    """One face as drawn: ``box`` (x, y, w, h) in frame pixels, its label and colour."""

    box: tuple[float, float, float, float]
    name: str | None
    similarity: float
    track_id: int | None = None

    @property
    def known(self) -> bool:
        return self.name is not None

    @property
    def label(self) -> str:
        return label_for(self.name, self.similarity, self.track_id)


def overlay_items(result: FrameResult) -> list[OverlayItem]:
    """What to draw for a frame's recognition result."""
    return [OverlayItem(face.detection.box, face.match.name, face.match.similarity, face.track_id) for face in result.faces]


class VideoView(QWidget):
    """Shows a frame scaled to fit (letterboxed), its overlay, and an optional banner."""

    def __init__(self, parent: QWidget | None = None, minimum: QSize | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(minimum or QSize(320, 240))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self.overlay: list[OverlayItem] = []
        self.banner = ""
        self.placeholder = ""
        self.stale = False  # the source is down: the last frame is shown dimmed, without boxes

    # -- data -----------------------------------------------------------------------------
    def show_frame(self, image: QImage, result: FrameResult | None) -> None:
        self._image = image
        self.overlay = overlay_items(result) if result is not None else []
        self.update()

    def clear(self, placeholder: str = "") -> None:
        self._image = None
        self.overlay = []
        self.stale = False
        self.placeholder = placeholder
        self.update()

    def set_stale(self, stale: bool) -> None:
        if stale != self.stale:
            self.stale = stale
            self.update()

    def set_banner(self, text: str) -> None:
        if text != self.banner:
            self.banner = text
            self.update()

    def overlay_names(self) -> list[str]:
        """The names drawn now ("Unknown" for unknown faces)."""
        return [item.name or "Unknown" for item in self.overlay]

    @property
    def has_frame(self) -> bool:
        return self._image is not None

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    # -- painting -------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        if self._image is None:
            if self.placeholder:
                painter.setPen(QColor(220, 220, 220))
                painter.drawText(self.rect().adjusted(24, 24, -24, -24), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            self._paint_banner(painter)
            return
        width, height = self._image.width(), self._image.height()
        scale = min(self.width() / width, self.height() / height)
        target = QRectF((self.width() - width * scale) / 2, (self.height() - height * scale) / 2, width * scale, height * scale)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self._image)
        if self.stale:
            painter.fillRect(target, QColor(0, 0, 0, 140))
            self._paint_banner(painter)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, min(14.0, 11.0 * scale)))
        font.setBold(True)
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        for item in self.overlay:
            x, y, w, h = item.box
            box = QRectF(target.left() + x * scale, target.top() + y * scale, w * scale, h * scale)
            colour = KNOWN if item.known else UNKNOWN
            painter.setPen(QPen(colour, 2.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(box)
            text = label_for(item.name, item.similarity, item.track_id, unknown=translate("VideoView", "Unknown"))
            text_box = QRectF(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
            top = box.top() - text_box.height()
            text_box.moveTo(QPointF(box.left() - 1, top if top >= target.top() else box.bottom()))
            painter.fillRect(text_box, colour)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(text_box, Qt.AlignmentFlag.AlignCenter, text)
        self._paint_banner(painter)

    def _paint_banner(self, painter: QPainter) -> None:
        if not self.banner:
            return
        metrics = QFontMetricsF(self.font())
        band = QRectF(0, 0, self.width(), metrics.height() + 12)
        painter.fillRect(band, QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 210, 80))
        painter.setFont(self.font())
        painter.drawText(band.adjusted(10, 0, -10, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.banner)
