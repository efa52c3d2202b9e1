"""The video widget: paints the latest processed frame with its recognition overlay.

The overlay is kept as plain data (:attr:`VideoView.overlay`, a list of
:class:`OverlayItem`) so tests can read what the user sees without parsing pixels.
Painting only scales the frame's QImage (already converted on the worker thread) and
draws boxes and labels; nothing heavy runs here. A right click on a face emits
:attr:`VideoView.faceMenuRequested` with that face (see :mod:`faceapp.gui.face_menu`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from faceapp.gui.i18n import translate
from faceapp.media.overlay import KNOWN_COLOUR, UNKNOWN_COLOUR, label_for
from faceapp.types import FaceResult, FrameResult
from faceapp.vision.liveness import DEFAULT_THRESHOLD as LIVE_THRESHOLD

KNOWN = QColor(KNOWN_COLOUR[2], KNOWN_COLOUR[1], KNOWN_COLOUR[0])  # the core's colours are BGR
UNKNOWN = QColor(UNKNOWN_COLOUR[2], UNKNOWN_COLOUR[1], UNKNOWN_COLOUR[0])
PENDING = QColor(130, 130, 130)  # a face seen only in views too poor to judge yet


@dataclass(frozen=True)
class OverlayItem:
    """One face as drawn: ``box`` (x, y, w, h) in frame pixels, its label and colour."""

    box: tuple[float, float, float, float]
    name: str | None
    similarity: float
    track_id: int | None = None
    visitor: int | None = None
    liveness: float | None = None  # P(live) when the liveness badge is on
    judged: bool = True  # False: seen only in views too poor to judge yet (grey, "poor view")

    @property
    def known(self) -> bool:
        return self.name is not None

    @property
    def label(self) -> str:
        return label_for(self.name, self.similarity, self.track_id, visitor=self.visitor)


def overlay_items(result: FrameResult) -> list[OverlayItem]:
    """What to draw for a frame's recognition result."""
    return [OverlayItem(face.detection.box, face.match.name, face.match.similarity, face.track_id, face.visitor,
                        face.liveness, face.judged) for face in result.faces]


class VideoView(QWidget):
    """Shows a frame scaled to fit (letterboxed), its overlay, and an optional banner.

    ``faceMenuRequested(face, global_position)``: the user right-clicked ``face`` (a
    :class:`~faceapp.types.FaceResult` of the frame on screen)."""

    faceMenuRequested = Signal(object, QPoint)

    def __init__(self, parent: QWidget | None = None, minimum: QSize | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(minimum or QSize(320, 240))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self.result: FrameResult | None = None
        self.overlay: list[OverlayItem] = []
        self.banner = ""
        self.placeholder = ""
        self.stale = False  # the source is down: the last frame is shown dimmed, without boxes

    # -- data -----------------------------------------------------------------------------
    def show_frame(self, image: QImage, result: FrameResult | None) -> None:
        self._image = image
        self.result = result
        self.overlay = overlay_items(result) if result is not None else []
        self.update()

    def clear(self, placeholder: str = "") -> None:
        self._image = None
        self.result = None
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
        """The names drawn now ("Unknown" for unknown faces, "Unknown #N" for a remembered visitor,
        "poor view" for a face seen only in views too poor to judge yet)."""
        return [item.name or ("Unknown" if item.visitor is None else f"Unknown #{item.visitor}") if item.judged
                else "poor view" for item in self.overlay]

    @property
    def has_frame(self) -> bool:
        return self._image is not None

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def _frame_rect(self) -> tuple[QRectF, float]:
        """Where the frame is drawn in the widget, and its scale."""
        width, height = self._image.width(), self._image.height()
        scale = min(self.width() / width, self.height() / height)
        return QRectF((self.width() - width * scale) / 2, (self.height() - height * scale) / 2, width * scale, height * scale), scale

    def face_at(self, position: QPointF) -> FaceResult | None:
        """The face drawn under ``position`` (widget coordinates), the smallest if boxes
        overlap; None over no face, or while the frame is stale."""
        if self._image is None or self.result is None or self.stale:
            return None
        target, scale = self._frame_rect()
        x, y = (position.x() - target.left()) / scale, (position.y() - target.top()) / scale
        under = [f for f in self.result.faces
                 if f.detection.box[0] <= x <= f.detection.box[0] + f.detection.box[2]
                 and f.detection.box[1] <= y <= f.detection.box[1] + f.detection.box[3]]
        return min(under, key=lambda f: f.detection.box[2] * f.detection.box[3], default=None)

    def contextMenuEvent(self, event) -> None:
        face = self.face_at(QPointF(event.pos()))
        if face is not None:
            self.faceMenuRequested.emit(face, event.globalPos())
            event.accept()
        else:
            event.ignore()

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
        target, scale = self._frame_rect()
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
            colour = KNOWN if item.known else UNKNOWN if item.judged else PENDING
            painter.setPen(QPen(colour, 2.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(box)
            if item.judged:
                text = label_for(item.name, item.similarity, item.track_id, unknown=translate("VideoView", "Unknown"),
                                 visitor=item.visitor)
            else:  # not a stranger: nobody can tell yet
                text = (f"#{item.track_id} " if item.track_id is not None else "") + translate("VideoView", "poor view")
            text_box = QRectF(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
            top = box.top() - text_box.height()
            text_box.moveTo(QPointF(box.left() - 1, top if top >= target.top() else box.bottom()))
            painter.fillRect(text_box, colour)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(text_box, Qt.AlignmentFlag.AlignCenter, text)
            if item.liveness is not None:
                self._paint_badge(painter, metrics, box, item.liveness)
        self._paint_banner(painter)

    @staticmethod
    def _paint_badge(painter: QPainter, metrics: QFontMetricsF, box: QRectF, liveness: float) -> None:
        """A "live" (green) or "photo?" (orange) badge under the face's box, with P(live)."""
        live = liveness >= LIVE_THRESHOLD
        text = (translate("VideoView", "live") if live else translate("VideoView", "photo?")) + f" {liveness:.2f}"
        badge = QRectF(box.left() - 1, box.bottom() + 2, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        painter.fillRect(badge, QColor(40, 160, 70) if live else QColor(230, 130, 20))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_banner(self, painter: QPainter) -> None:
        if not self.banner:
            return
        metrics = QFontMetricsF(self.font())
        band = QRectF(0, 0, self.width(), metrics.height() + 12)
        painter.fillRect(band, QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 210, 80))
        painter.setFont(self.font())
        painter.drawText(band.adjusted(10, 0, -10, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.banner)
