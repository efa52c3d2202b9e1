"""The people-memory panels of the main window (dockable):

* **In view**: each face on screen now, its crop, its name (or "Unknown #N") and since
  when it has been in view;
* **Timeline**: today's sightings with their crops, newest first, filtered by person;
  right-click one for "Not NAME" or "This is…" (a correction that sticks);
* **Unknown visitors**: the visitors remembered, with their best crop; name, merge or
  dismiss one in a click (naming enrolls their best crops, on the recognition thread,
  which owns the models; merging and dismissing run on the gallery thread).

The panels read the gallery only when its memory counter changed (polled), and never
the models: the GUI thread stays free.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceapp.errors import FaceAppError
from faceapp.gui.i18n import translate
from faceapp.gui.images import icon_from_bgr, icon_from_bytes, initials_icon
from faceapp.gui.timeline_actions import JobMessages, TimelineActions
from faceapp.gui.workers.jobs import describe

if TYPE_CHECKING:
    from faceapp.gui.asker import Asker
    from faceapp.gui.workers.controller import LiveController
    from faceapp.gui.workers.recognition import FramePacket
    from faceapp.storage.gallery import Gallery

logger = logging.getLogger(__name__)

ICON = 56


class DockWindow(Protocol):
    gallery: Gallery
    controller: LiveController
    asker: Asker

    def say(self, text: object, ms: int = 8000) -> None: ...


def _clock(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def _list() -> QListWidget:
    widget = QListWidget()
    widget.setIconSize(QSize(ICON, ICON))
    widget.setViewMode(QListView.ViewMode.ListMode)
    widget.setUniformItemSizes(True)
    return widget


class InViewDock(QDockWidget):
    """Who is in view now; updated from the live packets (at most twice a second)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(translate("Docks", "In view"), parent)
        self.setObjectName("in-view")
        self.list = _list()
        self.setWidget(self.list)
        self._since: dict[object, float] = {}
        self._shown_at = 0.0

    def labels(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def show_packet(self, packet: FramePacket, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown_at < 0.5:
            return
        self._shown_at = now
        faces = packet.result.faces
        keys = [face.track_id if face.track_id is not None else i for i, face in enumerate(faces)]
        wall = time.time()
        self._since = {k: self._since.get(k, wall) for k in keys}
        self.list.clear()
        image = packet.image
        for key, face in zip(keys, faces):
            x, y, w, h = (max(0, round(v)) for v in face.detection.box)
            crop = image[y : y + h, x : x + w]
            if face.match.name:
                label = face.match.name
            elif face.visitor is not None:
                label = translate("Docks", "Unknown #{number}").format(number=face.visitor)
            else:
                label = translate("Docks", "Unknown")
            item = QListWidgetItem(label + "  " + translate("Docks", "since {time}").format(time=_clock(self._since[key])))
            item.setIcon(icon_from_bgr(crop, ICON) if crop.size else initials_icon(label, ICON))
            self.list.addItem(item)


class _Polled(QDockWidget):
    """A panel reloaded when the gallery's memory changed (polled every ``poll_ms``)."""

    def __init__(self, title: str, window: DockWindow, poll_ms: int) -> None:
        super().__init__(title, window)  # type: ignore[arg-type]
        self.window = window
        self._revision: int | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh_if_changed)
        self._timer.start()

    def refresh_if_changed(self) -> None:
        try:
            revision = (self.window.gallery.memory_revision(), self.window.gallery.revision())
        except FaceAppError:
            return
        if revision != self._revision:
            self._revision = revision
            self.refresh()

    def refresh(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class TimelineDock(TimelineActions, _Polled):
    """Today's sightings, newest first; the combo box keeps one person's."""

    def __init__(self, window: DockWindow, poll_ms: int = 2000) -> None:
        super().__init__(translate("Docks", "Timeline"), window, poll_ms)
        self.setObjectName("timeline")
        self.person = QComboBox()
        self.person.addItem(translate("Docks", "Everyone"), None)
        self.person.currentIndexChanged.connect(lambda _index: self.refresh())
        self.list = _list()
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self._jobs: dict[int, str] = {}
        window.controller.jobFinished.connect(self._done)
        window.controller.jobFailed.connect(self._failed)
        window.controller.gallery_jobs.finished.connect(self._done)
        window.controller.gallery_jobs.failed.connect(self._failed)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.person)
        layout.addWidget(self.list, 1)
        self.setWidget(body)
        self.refresh_if_changed()

    def labels(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def refresh(self) -> None:
        gallery = self.window.gallery
        chosen = self.person.currentData()
        midnight = dt.datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        try:
            names = [p.name for p in gallery.people()]
            rows = gallery.sightings(since=midnight, person=chosen if chosen in names else None, limit=200)
        except FaceAppError as error:
            self.window.say(describe(error))
            return
        self.person.blockSignals(True)
        self.person.clear()
        self.person.addItem(translate("Docks", "Everyone"), None)
        for name in names:
            self.person.addItem(name, name)
        self.person.setCurrentIndex(max(0, self.person.findData(chosen)))
        self.person.blockSignals(False)
        self.list.clear()
        for s in rows:
            text = f"{_clock(s.first_seen)}  {s.label}  " + translate("Docks", "{frames} frame(s)").format(frames=s.frames)
            item = QListWidgetItem(text)
            icon = icon_from_bytes(s.thumbnail, ICON)
            item.setIcon(icon if not icon.isNull() else initials_icon(s.label, ICON))
            item.setToolTip(s.file or s.source)
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            self.list.addItem(item)


class UnknownsDock(JobMessages, _Polled):
    """The unknown visitors remembered, with Name…, Merge… and Dismiss."""

    def __init__(self, window: DockWindow, poll_ms: int = 2000) -> None:
        super().__init__(translate("Docks", "Unknown visitors"), window, poll_ms)
        self.setObjectName("unknown-visitors")
        self.list = _list()
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self.name_button = QPushButton(translate("Docks", "Name…"))
        self.merge_button = QPushButton(translate("Docks", "Merge…"))
        self.dismiss_button = QPushButton(translate("Docks", "Dismiss"))
        self.name_button.clicked.connect(self.name_selected)
        self.merge_button.clicked.connect(self.merge_selected)
        self.dismiss_button.clicked.connect(self.dismiss_selected)
        buttons = QHBoxLayout()
        for button in (self.name_button, self.merge_button, self.dismiss_button):
            buttons.addWidget(button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.setWidget(body)
        self._jobs: dict[int, str] = {}
        window.controller.jobFinished.connect(self._done)
        window.controller.jobFailed.connect(self._failed)
        window.controller.gallery_jobs.finished.connect(self._done)
        window.controller.gallery_jobs.failed.connect(self._failed)
        self.refresh_if_changed()
        self._update_buttons()

    def visitor_ids(self) -> list[int]:
        return [int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    def select(self, visitor: int) -> bool:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == visitor:
                self.list.setCurrentRow(i)
                return True
        return False

    def refresh(self) -> None:
        gallery = self.window.gallery
        keep = self.selected()
        try:
            visitors = gallery.visitors()
            crops = {v.id: next((s.thumbnail for s in gallery.sightings(visitor=v.id, limit=20) if s.thumbnail), None)
                     for v in visitors}
        except FaceAppError as error:
            self.window.say(describe(error))
            return
        self.list.clear()
        for v in visitors:
            last = "-" if v.last_seen is None else dt.datetime.fromtimestamp(v.last_seen).strftime("%Y-%m-%d %H:%M")
            item = QListWidgetItem(translate("Docks", "Unknown #{number}: {count} sighting(s), last {last}").format(
                number=v.id, count=v.sightings, last=last))
            icon = icon_from_bytes(crops[v.id], ICON)
            item.setIcon(icon if not icon.isNull() else initials_icon("?", ICON))
            item.setData(Qt.ItemDataRole.UserRole, v.id)
            self.list.addItem(item)
        if keep is not None:
            self.select(keep)
        self._update_buttons()

    def selected(self) -> int | None:
        items = self.list.selectedItems()
        return int(items[0].data(Qt.ItemDataRole.UserRole)) if items else None

    def _update_buttons(self) -> None:
        chosen = self.selected() is not None
        for button in (self.name_button, self.dismiss_button):
            button.setEnabled(chosen and not self._jobs)
        self.merge_button.setEnabled(chosen and self.list.count() > 1 and not self._jobs)

    # -- actions ----------------------------------------------------------------------------
    def name_selected(self) -> int | None:
        visitor = self.selected()
        if visitor is None:
            return None
        name = self.window.asker.text(self, translate("Docks", "Name Unknown #{number}").format(number=visitor),
                                      translate("Docks", "Who is this?"))
        if not name or not name.strip():
            return None
        return self.name_visitor(visitor, name.strip())

    def name_visitor(self, visitor: int, name: str) -> int:
        """Enroll ``visitor`` as ``name`` from their best crops (on the recognition thread)."""
        from faceapp.recognition.corrections import name_visitor

        gallery = self.window.gallery
        job = self.window.controller.submit(lambda recognizer, _cancelled: name_visitor(gallery, recognizer, visitor, name))
        self._jobs[job] = translate("Docks", "Unknown #{number} is {name} now.").format(number=visitor, name=name)
        self._update_buttons()
        return job

    def merge_selected(self) -> int | None:
        visitor = self.selected()
        others = [f"#{v}" for v in self.visitor_ids() if v != visitor]
        if visitor is None or not others:
            return None
        target = self.window.asker.pick(self, translate("Docks", "Merge Unknown #{number}").format(number=visitor),
                                        translate("Docks", "The same person as:"), others)
        if not target:
            return None
        into = int(target.lstrip("#"))
        gallery = self.window.gallery
        job = self.window.controller.gallery_jobs.submit(lambda: gallery.merge_visitors(visitor, into))
        self._jobs[job] = translate("Docks", "Unknown #{number} merged into #{into}.").format(number=visitor, into=into)
        self._update_buttons()
        return job

    def dismiss_selected(self) -> int | None:
        visitor = self.selected()
        if visitor is None or not self.window.asker.confirm(
                self, translate("Docks", "Dismiss Unknown #{number}").format(number=visitor),
                translate("Docks", "Forget Unknown #{number}, with their sightings and crops?").format(number=visitor)):
            return None
        gallery = self.window.gallery
        job = self.window.controller.gallery_jobs.submit(lambda: gallery.dismiss_visitor(visitor))
        self._jobs[job] = translate("Docks", "Unknown #{number} forgotten.").format(number=visitor)
        self._update_buttons()
        return job

    def _after_job(self) -> None:
        self._update_buttons()


def install_docks(window) -> tuple[InViewDock, TimelineDock, UnknownsDock]:
    """Add the three panels to ``window`` (a QMainWindow; right side, the timeline and
    the visitors tabbed) and a View menu to show or hide them."""
    in_view, timeline, unknowns = InViewDock(window), TimelineDock(window), UnknownsDock(window)
    for dock in (in_view, timeline, unknowns):
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.tabifyDockWidget(timeline, unknowns)
    timeline.raise_()
    menu = window.menuBar().addMenu(translate("Docks", "&View"))
    for dock in (in_view, timeline, unknowns):
        menu.addAction(dock.toggleViewAction())
    return in_view, timeline, unknowns
