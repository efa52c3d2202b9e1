"""The live recognition window.

Shows the chosen source with a box, name (or "Unknown") and similarity per face, green
for known and red for unknown; the status line gives frames per second, per-stage
milliseconds and the device the embedding runs on. The toolbar has the source picker,
pause/resume, snapshot, loop, a threshold control (applies at once, remembered), and
opens the enroll, add-from-photos, gallery and settings windows. All the work happens in
the :class:`~faceapp.gui.workers.controller.LiveController`'s threads; this window only
paints and handles input, and closing it stops every thread.

The Privacy menu is :mod:`faceapp.gui.privacy_menu`; the settings dialog's choices are
applied by :mod:`faceapp.gui.preferences`; snapshots are :mod:`faceapp.gui.snapshots`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from faceapp.errors import FaceAppError, GalleryChangedError, SourceError
from faceapp.gui import preferences, snapshots
from faceapp.gui.alerts import GuiAlerts
from faceapp.gui.asker import Asker, QtAsker
from faceapp.gui.decision_controls import DecisionControls, decision_options
from faceapp.gui.dialogs.about import AboutDialog
from faceapp.gui.dialogs.enroll import EnrollDialog
from faceapp.gui.dialogs.gallery import GalleryDialog
from faceapp.gui.dialogs.photos import PhotosDialog
from faceapp.gui.dialogs.settings import SettingsDialog
from faceapp.gui.dialogs.source_picker import SourcePickerDialog
from faceapp.gui.docks import install_docks
from faceapp.gui.face_menu import FaceMenu
from faceapp.gui.gallery_status import GalleryStatus
from faceapp.gui.icons import action_icon, app_icon
from faceapp.gui.privacy_menu import PrivacyMenu
from faceapp.gui.settings import AppSettings
from faceapp.gui.video_view import VideoView
from faceapp.gui.workers.controller import LiveController, SourceOpener
from faceapp.gui.workers.jobs import describe
from faceapp.gui.workers.recognition import FramePacket
from faceapp.media.reader import DEFAULT_STALL_TIMEOUT_S, Backoff, SourceState, SourceStatus
from faceapp.media.sources import SourceSpec, open_source
from faceapp.recognition.decision import DecisionRule
from faceapp.recognition.pipeline import Recognizer
from faceapp.storage.gallery import Gallery

logger = logging.getLogger(__name__)

VIDEO_PAGE, MESSAGE_PAGE = 0, 1


def performance_line(packet: FramePacket, device: str) -> str:
    """``"12.3 fps · detect 21 ms · align 1 ms · embed 15 ms · match 0.1 ms · CPU (…)"``."""
    times = packet.result.times
    return (
        f"{packet.fps:.1f} fps · detect {times.detect:.0f} ms · align {times.align:.1f} ms · "
        f"embed {times.embed:.0f} ms · match {times.match:.1f} ms · {device}"
    )


class MainWindow(QMainWindow):
    """The app's main window over a loaded ``recognizer`` and its ``gallery``.

    ``opener``, ``backoff`` and ``pace_fps`` are handed to the controller (tests inject
    fake cameras and short back-offs; by default sources open with the capture size of
    the settings); ``enroll_interval_s`` spaces webcam samples.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        gallery: Gallery,
        settings: AppSettings,
        asker: Asker | None = None,
        opener: SourceOpener | None = None,
        backoff: Backoff | None = None,
        pace_fps: float | None = None,
        enroll_interval_s: float = 0.4,
        parent: QWidget | None = None,
        stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        super().__init__(parent)
        self.recognizer = recognizer
        self.gallery = gallery
        self.settings = settings
        self.asker: Asker = asker or QtAsker()
        self.enroll_interval_s = enroll_interval_s
        opener = opener or (lambda spec: open_source(spec, self.settings.capture_size))
        self.controller = LiveController(recognizer, opener, backoff, pace_fps, parent=self, stall_timeout_s=stall_timeout_s)
        self.controller.set_loop(settings.loop_video)
        self.controller.set_tracking(settings.tracking)
        self.controller.set_liveness_badge(settings.liveness_badge)
        self.controller.set_remember(settings.remember)
        self.device = recognizer.embedder.device_name
        self.enroll_dialog: EnrollDialog | None = None
        self.gallery_dialog: GalleryDialog | None = None
        self.photos_dialog: PhotosDialog | None = None
        self.source_picker: SourcePickerDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.about_dialog: AboutDialog | None = None
        self._closed = False
        self.setWindowTitle("FaceApp")
        self.setWindowIcon(app_icon())

        self.view = VideoView()
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("font-size: 16px;")
        self.pick_button = QPushButton(self.tr("Choose a source…"))
        self.pick_button.clicked.connect(self.open_source_picker)
        self.retry_button = QPushButton(self.tr("Try again"))
        self.retry_button.clicked.connect(self.reopen)
        message_page = QWidget()
        message_layout = QVBoxLayout(message_page)
        message_layout.addStretch(1)
        message_layout.addWidget(self.message)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.pick_button)
        row.addWidget(self.retry_button)
        row.addStretch(1)
        message_layout.addLayout(row)
        message_layout.addStretch(2)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.view)
        self.pages.addWidget(message_page)
        self.setCentralWidget(self.pages)

        self._build_toolbar()
        self.privacy = PrivacyMenu(self)
        self.face_menu = FaceMenu(self)
        self.alerts = GuiAlerts(self)
        self.in_view_dock, self.timeline_dock, self.unknowns_dock = install_docks(self)
        help_menu = self.menuBar().addMenu(self.tr("&Help"))
        help_menu.addAction(self.about_action)
        self.source_label = QLabel(self.tr("no source"))
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #c0392b;")
        self.performance_label = QLabel(f"— fps · {self.device}")
        self.statusBar().addWidget(self.source_label, 1)
        self.statusBar().addWidget(self.error_label, 2)
        self.gallery_label = QLabel()
        self.gallery_label.setStyleSheet("color: #c0392b;")
        self.gallery_label.setVisible(False)
        self.statusBar().addWidget(self.gallery_label, 2)
        self.gallery_status = GalleryStatus(lambda: self.gallery, self.gallery_label, self)
        self.statusBar().addPermanentWidget(self.performance_label)

        self.controller.packetReady.connect(self._on_packet)
        self.controller.statusChanged.connect(self._on_status)
        self.controller.errorChanged.connect(self._on_error)
        self.controller.start()

        geometry = settings.geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1040, 720)

    # -- toolbar -----------------------------------------------------------------------------
    def make_action(self, text: str, slot, shortcut: str | None = None, checkable: bool = False, icon: str | None = None,
                    tip: str | None = None) -> QAction:
        """An action; its tooltip says what it does and its shortcut."""
        action = QAction(text, self)
        if icon:
            action.setIcon(action_icon(icon))
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        label = tip or text.rstrip("…")
        shown = QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText) if shortcut else ""
        action.setToolTip(f"{label} ({shown})" if shown else label)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        return action

    def _build_toolbar(self) -> None:
        bar = QToolBar(self.tr("Main"))
        bar.setObjectName("main-toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        self.addToolBar(bar)
        act = self.make_action
        self.source_action = act(self.tr("Source…"), self.open_source_picker, "Ctrl+O", icon="source",
                                 tip=self.tr("Choose a webcam, video file, stream or image folder"))
        self.reopen_action = act(self.tr("Reopen"), self.reopen, "Ctrl+R", icon="reopen", tip=self.tr("Open the source again"))
        self.pause_action = act(self.tr("Pause"), self.set_paused, "Space", checkable=True, icon="pause",
                                tip=self.tr("Freeze the picture"))
        self.snapshot_action = act(self.tr("Snapshot"), self.snapshot, "Ctrl+S", icon="snapshot",
                                   tip=self.tr("Save the picture with its boxes and names"))
        self.loop_action = act(self.tr("Loop video"), self._set_loop, checkable=True, icon="loop",
                               tip=self.tr("Play a video file or folder again when it ends"))
        self.loop_action.setChecked(self.settings.loop_video)
        self.enroll_action = act(self.tr("Enroll…"), self.open_enroll_dialog, "Ctrl+E", icon="enroll",
                                 tip=self.tr("Enroll someone from the camera"))
        self.photos_action = act(self.tr("Add from photos…"), lambda: self.open_photos_dialog(), "Ctrl+P", icon="photos",
                                 tip=self.tr("Enroll someone from photo files"))
        self.gallery_action = act(self.tr("Gallery…"), self.open_gallery_dialog, "Ctrl+G", icon="gallery",
                                  tip=self.tr("Manage the enrolled people"))
        self.settings_action = act(self.tr("Settings…"), self.open_settings_dialog, "Ctrl+,", icon="settings",
                                   tip=self.tr("Camera, recognition, privacy, gallery and language"))
        self.about_action = act(self.tr("About FaceApp"), self.open_about_dialog, icon="about")
        for action in (self.source_action, self.reopen_action, self.pause_action, self.snapshot_action, self.loop_action):
            bar.addAction(action)
        bar.addSeparator()
        self.decision_controls = DecisionControls(bar, self.recognizer, self.set_decision)
        self.threshold_spin = self.decision_controls.spin
        bar.addSeparator()
        for action in (self.enroll_action, self.photos_action, self.gallery_action, self.settings_action):
            bar.addAction(action)

    # -- messages ----------------------------------------------------------------------------
    def say(self, text: object, ms: int = 8000) -> None:
        """One line in the status bar (capitalised)."""
        line = " ".join(str(text).split())
        self.statusBar().showMessage(line[:1].upper() + line[1:], ms)

    def _on_error(self, error: FaceAppError | None) -> None:
        if isinstance(error, GalleryChangedError):
            message = self.tr("The gallery was encrypted, decrypted or given a new passphrase by another program: "
                              "choose Privacy ▸ Reopen the gallery… to open it again.")
        else:
            message = "" if error is None else describe(error)
        self.error_label.setText(message)

    def close_gallery_windows(self) -> None:
        """Close the windows that show the gallery (before it is swapped for another)."""
        for dialog in (self.gallery_dialog, self.enroll_dialog, self.photos_dialog):
            if dialog is not None and dialog.isVisible():
                dialog.reject()

    # -- source ------------------------------------------------------------------------------
    def open_source_text(self, text: str | None) -> None:
        """Open a source written as for ``--source`` (None: the webcam of the settings);
        a bad one is explained in the window."""
        try:
            spec = SourceSpec.parse(str(self.settings.camera) if text is None else text)
        except SourceError as error:
            self._show_message(str(error), retry=False)
            return
        self.open_spec(spec)

    def open_spec(self, spec: SourceSpec, loop: bool | None = None) -> None:
        if loop is not None:
            self.loop_action.setChecked(loop)
        self.pause_action.setChecked(False)
        self.view.clear(self.tr("Opening {source}…").format(source=spec))
        self.view.set_banner("")
        self.pages.setCurrentIndex(VIDEO_PAGE)
        self.setWindowTitle(f"FaceApp — {spec}")
        self.controller.open(spec)
        self.settings.source = spec.value

    def open_source_picker(self) -> SourcePickerDialog:
        """Show the source picker (not blocking); its choice is opened when accepted."""
        dialog = SourcePickerDialog(self.asker, self.controller.spec, self.controller.loop, self)
        dialog.accepted.connect(lambda: self._picked(dialog))
        self.source_picker = dialog
        dialog.open()
        return dialog

    def _picked(self, dialog: SourcePickerDialog) -> None:
        if dialog.spec is not None:
            self.open_spec(dialog.spec, dialog.loop)

    def reopen(self) -> None:
        """Open the current source again (after it ended, or failed to open)."""
        if self.controller.spec is not None:
            self.open_spec(self.controller.spec)

    def _show_message(self, text: str, retry: bool) -> None:
        advice = self.tr("Choose a webcam, a video file, a stream URL or an image folder.")
        self.message.setText(f"{text[:1].upper()}{text[1:]}\n\n{advice}")
        self.retry_button.setVisible(retry)
        self.pages.setCurrentIndex(MESSAGE_PAGE)
        self.source_label.setText(text)

    def _on_status(self, status: SourceStatus) -> None:
        state = status.state
        if state is SourceState.FAILED:
            self._show_message(status.message, retry=True)
            return
        if state is SourceState.STOPPED:
            return
        self.pages.setCurrentIndex(VIDEO_PAGE)
        self.source_label.setText({
            SourceState.OPENING: status.message,
            SourceState.LIVE: f"● {status.message}",
            SourceState.RECONNECTING: self.tr("reconnecting…"),
            SourceState.ENDED: status.message,
        }.get(state, status.message))
        self.view.set_stale(state is SourceState.RECONNECTING)
        if state is SourceState.RECONNECTING:
            self.view.set_banner(status.message)
            self.performance_label.setText(f"— fps · {self.device}")
        elif state is SourceState.ENDED:
            self.view.set_banner(self.tr("{message}: Reopen (Ctrl+R) plays it again; “Loop video” repeats it").format(
                message=status.message))
        else:
            self.view.set_banner(self.tr("Paused") if self.controller.paused else "")

    # -- frames ------------------------------------------------------------------------------
    def _on_packet(self, packet: FramePacket) -> None:
        self.view.show_frame(packet.qimage, packet.result)
        self.decision_controls.show_threshold(self.recognizer.last_threshold)
        if self.in_view_dock.isVisible():
            self.in_view_dock.show_packet(packet)
        self.performance_label.setText(performance_line(packet, self.device))

    # -- controls ----------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        self.controller.set_paused(paused)
        self.pause_action.setText(self.tr("Resume") if paused else self.tr("Pause"))
        if self.pause_action.isChecked() != paused:
            self.pause_action.setChecked(paused)
        self.view.set_banner(self.tr("Paused") if paused else "")

    def _set_loop(self, loop: bool) -> None:
        self.controller.set_loop(loop)
        self.settings.loop_video = loop

    def set_decision(self, rule: DecisionRule | str | float) -> None:
        """Apply a decision rule (a preset or a fixed threshold) at once (next frame) and
        remember it."""
        self.recognizer.decision = rule
        self.settings.decision = self.recognizer.decision.to_text()
        self.decision_controls.show_rule(self.recognizer.decision)

    def set_threshold(self, value: float) -> None:
        """Name faces at one fixed threshold from the next frame on (remembered)."""
        self.set_decision(DecisionRule(fixed=float(value)))

    def snapshot(self) -> Path | None:
        """Save the frame on screen as a PNG (see :mod:`faceapp.gui.snapshots`)."""
        return snapshots.save_snapshot(self)

    # -- other windows ----------------------------------------------------------------------
    def open_enroll_dialog(self) -> EnrollDialog:
        dialog = EnrollDialog(self.controller, self.gallery, self.asker, self.settings.sample_count, self.enroll_interval_s, self,
                              challenge=self.settings.enroll_challenge, poses=self.settings.enroll_poses)
        dialog.finished.connect(lambda _: self._report(dialog.saved))
        dialog.count_spin.valueChanged.connect(lambda count: setattr(self.settings, "sample_count", count))
        self.enroll_dialog = dialog
        dialog.open()
        return dialog

    def open_photos_dialog(self, name: str = "", parent: QWidget | None = None) -> PhotosDialog:
        dialog = PhotosDialog(self.controller, self.gallery, self.asker, name, parent or self)
        dialog.finished.connect(lambda _: self._report(dialog.saved))
        self.photos_dialog = dialog
        dialog.open()
        return dialog

    def open_gallery_dialog(self) -> GalleryDialog:
        dialog = GalleryDialog(self.gallery, self.asker, add_photos=self.open_photos_dialog, jobs=self.controller.gallery_jobs,
                               parent=self, offered_threshold=self.recognizer.verification_threshold)
        self.gallery_dialog = dialog
        dialog.open()
        return dialog

    def open_settings_dialog(self) -> SettingsDialog:
        """Show the settings (not blocking); the choice is applied when accepted."""
        dialog = SettingsDialog(preferences.current_choice(self), decision_options(self.recognizer, self.recognizer.decision),
                                self.asker, self)
        dialog.accepted.connect(lambda: dialog.choice is not None and preferences.apply_choice(self, dialog.choice))
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def open_about_dialog(self) -> AboutDialog:
        dialog = AboutDialog(self.recognizer.card, self.gallery.path, self.settings.location, self.device, self)
        self.about_dialog = dialog
        dialog.open()
        return dialog

    def _report(self, saved) -> None:
        if saved is not None:
            self.statusBar().showMessage(saved.message, 8000)

    # -- closing -----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> bool:
        """Stop every worker thread (within a second); idempotent."""
        if self._closed:
            return True
        self._closed = True
        try:
            self.settings.geometry = QByteArray(self.saveGeometry())
        except Exception:
            logger.debug("could not save the window geometry", exc_info=True)
        self.alerts.close()
        return self.controller.shutdown(1.0)
