"""Add from photos: pick image files for a new or an existing person.

The photos are read, detected and embedded on the recognition thread (the one thread
that uses the detector), then saved through :func:`~faceapp.gui.dialogs.saving.save_samples`:
one face per photo, and any bad photo stops the whole batch with a one-line reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceapp.errors import FaceAppError
from faceapp.gui.asker import Asker
from faceapp.gui.dialogs.saving import Saved, save_samples
from faceapp.gui.dialogs.source_picker import IMAGE_FILTER
from faceapp.gui.workers.controller import LiveController
from faceapp.gui.workers.jobs import describe
from faceapp.gui.workers.recognition import Job, JobCancelled
from faceapp.media.imageio import read_image
from faceapp.recognition.enrollment import Sample, samples_from_images
from faceapp.storage.gallery import Gallery, normalize_name

logger = logging.getLogger(__name__)


def photos_job(paths: Sequence[str]) -> Job:
    """A job turning ``paths`` into samples; it stops between photos when cancelled."""

    def job(recognizer, cancelled) -> list[Sample]:
        def images():
            for path in paths:
                if cancelled():
                    raise JobCancelled()
                yield str(path), read_image(path)

        return samples_from_images(recognizer, images())

    return job


class PhotosDialog(QDialog):
    """Pick a person (type a new name or choose one) and their photos, then Add."""

    def __init__(self, controller: LiveController, gallery: Gallery, asker: Asker, name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Add from photos"))
        self._controller = controller
        self._gallery = gallery
        self._asker = asker
        self._job: int | None = None
        self.saved: Saved | None = None

        self.name_combo = QComboBox()
        self.name_combo.setEditable(True)
        self.name_combo.addItems([person.name for person in gallery.people()])
        self.name_combo.setCurrentText(name)
        self.name_combo.lineEdit().setPlaceholderText(self.tr("a new name, or choose someone enrolled"))
        self.files = QListWidget()
        self.choose_button = QPushButton(self.tr("Choose photos…"))
        self.choose_button.clicked.connect(self.choose_photos)
        self.add_button = QPushButton(self.tr("Add"))
        self.add_button.clicked.connect(self.add)
        self.close_button = QPushButton(self.tr("Close"))
        self.close_button.clicked.connect(self.reject)
        self.status = QLabel(self.tr("One face per photo; the person alone."))
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow(self.tr("Person"), self.name_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.choose_button)
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.files, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

        controller.jobFinished.connect(self._on_job_finished)
        controller.jobFailed.connect(self._on_job_failed)
        self.resize(520, 360)

    def paths(self) -> list[str]:
        return [self.files.item(i).text() for i in range(self.files.count())]

    def set_paths(self, paths: Sequence[str]) -> None:
        self.files.clear()
        self.files.addItems([str(p) for p in paths])

    def choose_photos(self) -> None:
        paths = self._asker.open_files(self, self.tr("Choose photos of this person"), IMAGE_FILTER)
        if paths:
            self.set_paths(paths)

    def add(self) -> None:
        try:
            normalize_name(self.name_combo.currentText())
        except FaceAppError as error:
            self.status.setText(str(error))
            return
        paths = self.paths()
        if not paths:
            self.status.setText(self.tr("Choose one or more photos first."))
            return
        self._busy(True)
        self.status.setText(self.tr("Reading 1 photo…") if len(paths) == 1 else self.tr("Reading {count} photos…").format(count=len(paths)))
        self._job = self._controller.submit(photos_job(paths))

    def _busy(self, busy: bool) -> None:
        for widget in (self.add_button, self.choose_button, self.name_combo):
            widget.setEnabled(not busy)

    def _on_job_finished(self, job_id: int, samples: list[Sample]) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._busy(False)
        try:
            saved = save_samples(self._gallery, self._controller.recognizer, self.name_combo.currentText(), samples, self._asker, self)
        except FaceAppError as error:
            self.status.setText(" ".join(str(error).split()))
            return
        if saved is None:
            self.status.setText(self.tr("Not saved."))
            return
        self.saved = saved
        logger.info("%s from %s", saved.message, ", ".join(Path(p).name for p in self.paths()))
        self.accept()

    def _on_job_failed(self, job_id: int, error: BaseException) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._busy(False)
        self.status.setText(describe(error))

    def done(self, result: int) -> None:
        self._job = None  # a result still on its way is ignored: nothing is saved
        for signal, slot in ((self._controller.jobFinished, self._on_job_finished), (self._controller.jobFailed, self._on_job_failed)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        super().done(result)
