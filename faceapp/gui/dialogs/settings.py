"""The settings dialog: camera and capture size, decision rule, minimum face size,
tracking, privacy, the gallery's location and the interface language.

The dialog edits a :class:`SettingsChoice` and returns it; the main window applies it
(:meth:`~faceapp.gui.main_window.MainWindow.apply_settings`) and keeps it with the
app's settings (QSettings), so the dialog itself changes nothing until OK.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceapp.gui.asker import Asker
from faceapp.gui.i18n import available_languages
from faceapp.media.privacy import BLUR_CHOICES
from faceapp.recognition.alerts import AlertChoice
from faceapp.storage.locations import as_location, describe

CAPTURE_SIZES: tuple[tuple[int, int] | None, ...] = (None, (640, 480), (1280, 720), (1920, 1080))
GALLERY_FILTER = "FaceApp gallery (*.sqlite3 *.db);;All files (*)"


@dataclass(frozen=True)
class SettingsChoice:
    """What the dialog shows and returns."""

    camera: int
    capture_size: tuple[int, int] | None
    decision: str  # a preset name, or a fixed threshold as text
    min_face_size: int
    tracking: bool
    embeddings_only: bool
    snapshot_blur: str
    gallery_path: Path | str  # a file, or a postgresql:// URL
    language: str | None  # None: the system's
    alerts: AlertChoice = field(default_factory=AlertChoice)
    remember: bool = True
    retention_days: float = 30.0  # sightings older than this are purged (0: kept for ever)
    people: tuple[str, ...] = ()  # offered as alert targets
    liveness_badge: bool = False  # a "live" / "photo?" badge on each face (the passive anti-spoofing check)


def camera_list(limit: int = 10) -> list[tuple[int, str]]:
    """``(index, name)`` of the cameras: named by QtMultimedia where it is installed,
    else by the system (Linux), else just the first few indexes."""
    try:
        from PySide6.QtMultimedia import QMediaDevices

        devices = QMediaDevices.videoInputs()
        if devices:
            return [(index, device.description()) for index, device in enumerate(devices[:limit])]
    except ImportError:
        pass
    from faceapp.media.sources import camera_names

    named = camera_names(limit)
    return list(named.items()) if named else [(index, "") for index in range(4)]


class SettingsDialog(QDialog):
    """Edits a :class:`SettingsChoice`; :attr:`choice` holds the answer once accepted."""

    def __init__(self, current: SettingsChoice, decisions: list[tuple[str, str]], asker: Asker,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Settings"))
        self._asker = asker
        self._current = current
        self.choice: SettingsChoice | None = None

        self.camera = QComboBox()
        cameras = camera_list()
        if current.camera not in [index for index, _ in cameras]:
            cameras.append((current.camera, ""))
        for index, name in cameras:
            label = self.tr("Camera {index}").format(index=index) + (f" — {name}" if name else "")
            self.camera.addItem(label, index)
        self.camera.setCurrentIndex(self.camera.findData(current.camera))
        self.capture = QComboBox()
        sizes = list(CAPTURE_SIZES) + ([current.capture_size] if current.capture_size not in CAPTURE_SIZES else [])
        self._sizes = sizes
        for size in sizes:
            self.capture.addItem(self.tr("The camera's own") if size is None else f"{size[0]} × {size[1]}")
        self.capture.setCurrentIndex(sizes.index(current.capture_size))

        self.threshold = QComboBox()  # the decision rule: (rule as text, label) from the main window
        for rule, label in decisions:
            self.threshold.addItem(label, rule)
        self.threshold.setCurrentIndex(max(0, self.threshold.findData(current.decision)))
        self.threshold.setToolTip(self.tr("When a face is named: each preset allows a share of strangers' faces to be "
                                          "named, whatever the number of people enrolled (type a fixed threshold in the toolbar)"))
        self.min_face = QSpinBox()
        self.min_face.setRange(0, 1000)
        self.min_face.setSuffix(self.tr(" px"))
        self.min_face.setValue(current.min_face_size)
        self.min_face.setToolTip(self.tr("Faces smaller than this, in pixels, are ignored"))
        self.tracking = QCheckBox(self.tr("Follow faces across frames (steadier names, less work)"))
        self.tracking.setChecked(current.tracking)
        self.liveness_badge = QCheckBox(self.tr("Show whether each face looks live or like a photo (slower)"))
        self.liveness_badge.setChecked(current.liveness_badge)
        self.liveness_badge.setToolTip(self.tr("Runs the anti-spoofing networks on every face of every frame"))

        self.embeddings_only = QCheckBox(self.tr("Embeddings only: store no face images (deletes every thumbnail)"))
        self.embeddings_only.setChecked(current.embeddings_only)
        self.blur = QComboBox()
        blur_names = {"none": self.tr("No faces"), "unknown": self.tr("Unknown faces"), "all": self.tr("All faces")}
        for choice in BLUR_CHOICES:
            self.blur.addItem(blur_names[choice], choice)
        self.blur.setCurrentIndex(self.blur.findData(current.snapshot_blur))

        self.gallery = QLineEdit(describe(current.gallery_path))  # a server URL's password masked
        self.gallery.setToolTip(self.tr("A gallery file, or postgresql://USER@HOST/DATABASE for a gallery shared "
                                        "on a PostgreSQL server (see the README)"))
        browse = QPushButton(self.tr("Choose…"))
        browse.clicked.connect(self._browse_gallery)
        gallery_row = QHBoxLayout()
        gallery_row.addWidget(self.gallery, 1)
        gallery_row.addWidget(browse)

        self.language = QComboBox()
        self.language.addItem(self.tr("The system's"), None)
        for code, name in available_languages().items():
            self.language.addItem(name, code)
        self.language.setCurrentIndex(max(0, self.language.findData(current.language)))
        self.language.setToolTip(self.tr("Applies when FaceApp starts again"))

        self.remember = QCheckBox(self.tr("Remember sightings and unknown visitors"))
        self.remember.setChecked(current.remember)
        self.retention = QSpinBox()
        self.retention.setRange(0, 36500)
        self.retention.setSuffix(self.tr(" days"))
        self.retention.setSpecialValueText(self.tr("for ever"))
        self.retention.setValue(round(current.retention_days))
        self.retention.setToolTip(self.tr("Sightings older than this are deleted, with their crops"))
        self.alert_who = QComboBox()
        for label, value in ((self.tr("Off"), ""), (self.tr("Any unknown face"), "unknown"),
                             (self.tr("Anyone enrolled"), "known"), (self.tr("Anyone"), "anyone")):
            self.alert_who.addItem(label, value)
        for name in current.people:
            self.alert_who.addItem(name, name)
        if self.alert_who.findData(current.alerts.who) < 0:
            self.alert_who.addItem(current.alerts.who, current.alerts.who)
        self.alert_who.setCurrentIndex(self.alert_who.findData(current.alerts.who))
        self.alert_cooldown = QDoubleSpinBox()
        self.alert_cooldown.setRange(0, 86400)
        self.alert_cooldown.setSuffix(self.tr(" s"))
        self.alert_cooldown.setValue(current.alerts.cooldown_s)
        self.alert_cooldown.setToolTip(self.tr("After an alert for someone, stay silent about them this long"))
        self.alert_notify = QCheckBox(self.tr("Desktop notification"))
        self.alert_notify.setChecked(current.alerts.notify)
        self.alert_sound = QCheckBox(self.tr("Sound"))
        self.alert_sound.setChecked(current.alerts.sound)
        self.alert_command = QLineEdit(current.alerts.command)
        self.alert_command.setPlaceholderText(self.tr("a command; it gets the event as JSON on its input"))
        self.alert_source = QLineEdit(current.alerts.source)
        self.alert_source.setPlaceholderText(self.tr("any source (or one: webcam 0, a file, a stream URL)"))

        video = QGroupBox(self.tr("Camera"))
        video_form = QFormLayout(video)
        video_form.addRow(self.tr("Webcam"), self.camera)
        video_form.addRow(self.tr("Capture size"), self.capture)
        recognition = QGroupBox(self.tr("Recognition"))
        recognition_form = QFormLayout(recognition)
        recognition_form.addRow(self.tr("Names faces"), self.threshold)
        recognition_form.addRow(self.tr("Minimum face size"), self.min_face)
        recognition_form.addRow("", self.tracking)
        recognition_form.addRow("", self.liveness_badge)
        privacy = QGroupBox(self.tr("Privacy"))
        privacy_form = QFormLayout(privacy)
        privacy_form.addRow("", self.embeddings_only)
        privacy_form.addRow(self.tr("Blur in snapshots"), self.blur)
        privacy_form.addRow("", self.remember)
        privacy_form.addRow(self.tr("Keep sightings"), self.retention)
        alerts = QGroupBox(self.tr("Alerts"))
        alerts_form = QFormLayout(alerts)
        alerts_form.addRow(self.tr("Alert for"), self.alert_who)
        alerts_form.addRow(self.tr("Cool-down"), self.alert_cooldown)
        actions_row = QHBoxLayout()
        actions_row.addWidget(self.alert_notify)
        actions_row.addWidget(self.alert_sound)
        alerts_form.addRow("", actions_row)
        alerts_form.addRow(self.tr("Only for"), self.alert_source)
        alerts_form.addRow(self.tr("Run"), self.alert_command)
        general = QGroupBox(self.tr("Gallery and language"))
        general_form = QFormLayout(general)
        general_form.addRow(self.tr("Gallery file"), gallery_row)
        general_form.addRow(self.tr("Language"), self.language)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for group in (video, recognition, privacy, alerts, general):
            layout.addWidget(group)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def _browse_gallery(self) -> None:
        path = self._asker.save_file(self, self.tr("Gallery file (an existing one, or a new name)"), self.gallery.text(), GALLERY_FILTER)
        if path:
            self.gallery.setText(path)

    def chosen(self) -> SettingsChoice:
        """The form's values."""
        text = self.gallery.text().strip()
        return replace(
            self._current,
            camera=int(self.camera.currentData()),
            capture_size=self._sizes[self.capture.currentIndex()],
            decision=str(self.threshold.currentData()),
            min_face_size=int(self.min_face.value()),
            tracking=self.tracking.isChecked(),
            liveness_badge=self.liveness_badge.isChecked(),
            embeddings_only=self.embeddings_only.isChecked(),
            snapshot_blur=str(self.blur.currentData()),
            gallery_path=(as_location(text) if text and text != describe(self._current.gallery_path)
                          else self._current.gallery_path),
            language=self.language.currentData(),
            alerts=AlertChoice(str(self.alert_who.currentData() or ""), float(self.alert_cooldown.value()),
                               self.alert_notify.isChecked(), self.alert_sound.isChecked(), self.alert_command.text().strip(),
                               self.alert_source.text().strip()),
            remember=self.remember.isChecked(),
            retention_days=float(self.retention.value()),
        )

    def accept(self) -> None:
        self.choice = self.chosen()
        super().accept()
