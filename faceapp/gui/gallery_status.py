"""The status bar's word on a server gallery's connection: checked once a second (the
gallery's listener keeps it current), shown while the connection is lost and being
retried, cleared when it is back. A file gallery never has anything to say."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

from faceapp.gui.i18n import translate


class GalleryStatus(QObject):
    """Shows ``gallery().connection_problem`` in ``label``."""

    def __init__(self, gallery: Callable[[], object], label: QLabel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gallery, self._label = gallery, label
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def refresh(self) -> str:
        problem = getattr(self._gallery(), "connection_problem", None)
        text = "" if not problem else translate("GalleryStatus", "Gallery server: {problem}").format(problem=problem)
        if self._label.text() != text:
            self._label.setText(text)
            self._label.setVisible(bool(text))
        return text
