"""Enroll from the camera: type a name, capture several good samples, prove liveness, save.

Each live frame is judged on the recognition thread (:func:`~faceapp.recognition.enrollment.evaluate_frame`:
quality, one face, and the passive anti-spoofing check) while this dialog is open; the
dialog only shows the verdict ("move closer", "too dark", "this looks like a photo", ...)
and keeps the accepted samples as thumbnails. With ``poses`` (the default) the capture
asks for the person looking straight at the camera, then turned a little to their left
and to their right, gathers a few more views of each than it keeps, and keeps those that
add most (:class:`~faceapp.recognition.enroll_poses.PoseCapture`). Any sample can be
retaken (in the pose it was taken in). When every sample
is taken, the dialog asks the person to turn their head to their left and right, in a
random order (:class:`~faceapp.recognition.challenge.HeadTurnChallenge`, judged by the yaw
of the 5 landmarks): Save is possible once that passed (``challenge=False`` skips it).
Nothing is written until Save; Cancel leaves the gallery untouched.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PySide6.QtCore import QT_TRANSLATE_NOOP, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceapp.errors import FaceAppError
from faceapp.gui.asker import Asker
from faceapp.gui.dialogs.saving import Saved, save_samples
from faceapp.gui.i18n import translate
from faceapp.gui.images import icon_from_bgr
from faceapp.gui.video_view import VideoView
from faceapp.gui.workers.controller import LiveController
from faceapp.gui.workers.recognition import FramePacket
from faceapp.media.reader import SourceState, SourceStatus
from faceapp.recognition.challenge import ChallengeState, HeadTurnChallenge
from faceapp.recognition.enroll_poses import INSTRUCTIONS, PoseCapture
from faceapp.recognition.enrollment import Sample
from faceapp.storage.gallery import Gallery, normalize_name
from faceapp.vision.pose import yaw_degrees

logger = logging.getLogger(__name__)

THUMBNAIL = 72
NO_CAMERA = QT_TRANSLATE_NOOP("EnrollDialog", "No camera picture: choose a working source in the main window, or use “Add from photos”.")
#: The core's words for what is wrong with a sample (faceapp.vision.quality, faceapp.recognition.enrollment).
PROBLEMS = (
    QT_TRANSLATE_NOOP("Quality", "move closer"),
    QT_TRANSLATE_NOOP("Quality", "too dark"),
    QT_TRANSLATE_NOOP("Quality", "too bright"),
    QT_TRANSLATE_NOOP("Quality", "hold still (image is blurred)"),
    QT_TRANSLATE_NOOP("Quality", "turn to the camera"),
    QT_TRANSLATE_NOOP("Quality", "no face in view"),
    QT_TRANSLATE_NOOP("Quality", "one person at a time, please"),
    QT_TRANSLATE_NOOP("Quality", "this looks like a photo or a screen, not a live face"),
    QT_TRANSLATE_NOOP("Quality", "look straight at the camera"),
    QT_TRANSLATE_NOOP("Quality", "turn a little more to your left"),
    QT_TRANSLATE_NOOP("Quality", "turn a little more to your right"),
    QT_TRANSLATE_NOOP("Quality", "not so far: turn back a little"),
)
#: The pose-diverse capture's instructions (faceapp.recognition.enroll_poses).
POSE_INSTRUCTIONS = (
    QT_TRANSLATE_NOOP("Poses", "look straight at the camera"),
    QT_TRANSLATE_NOOP("Poses", "turn your head a little to your left"),
    QT_TRANSLATE_NOOP("Poses", "turn your head a little to your right"),
)
#: The head-turn challenge's prompts (faceapp.recognition.challenge).
PROMPTS = (
    QT_TRANSLATE_NOOP("Challenge", "look straight at the camera"),
    QT_TRANSLATE_NOOP("Challenge", "turn your head to your left"),
    QT_TRANSLATE_NOOP("Challenge", "turn your head to your right"),
)
# The person faces the screen: their left is its left.
ARROWS = {"turn your head to your left": "⟸ ", "turn your head to your right": "⟹ ",
          INSTRUCTIONS["left"]: "⟸ ", INSTRUCTIONS["right"]: "⟹ "}


def problem_text(problem: str) -> str:
    """A sample's problems ("too dark; move closer") in the interface's language; a
    number in brackets after one ("(liveness 0.23)") is kept as it is."""
    parts = []
    for part in problem.split("; "):
        words, bracket, rest = part.partition(" (")
        parts.append(translate("Quality", words) + (f" ({rest}" if bracket else ""))
    return "; ".join(parts)


class EnrollDialog(QDialog):
    """The guided capture. ``min_interval_s`` spaces the samples out in time, so that
    they differ a little (pose, expression) instead of being copies of one frame."""

    def __init__(
        self,
        controller: LiveController,
        gallery: Gallery,
        asker: Asker,
        sample_count: int = 5,
        min_interval_s: float = 0.4,
        parent: QWidget | None = None,
        challenge: bool = True,
        poses: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Enroll from the camera"))
        self._controller = controller
        self._gallery = gallery
        self._asker = asker
        self._min_interval_s = min_interval_s
        self._last_accepted = float("-inf")
        self.samples: list[Sample | None] = [None] * sample_count
        self.sample_poses: list[str | None] = [None] * sample_count  # the pose each sample was taken in
        self.use_poses = poses
        self.pose_capture: PoseCapture | None = None  # the capture round under way (poses only)
        self.capturing = False
        self.saved: Saved | None = None
        self.use_challenge = challenge
        self.challenge: HeadTurnChallenge | None = None  # running, or the last one
        self.live_checked = not challenge
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._challenge_tick)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText(self.tr("the person's name"))
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 20)
        self.count_spin.setValue(sample_count)
        self.count_spin.valueChanged.connect(self._resize_samples)
        form = QFormLayout()
        form.addRow(self.tr("Name"), self.name_edit)
        form.addRow(self.tr("Samples"), self.count_spin)

        self.preview = VideoView(minimum=QSize(400, 300))
        self.status = QLabel(self.tr("Type a name, look at the camera, then press “Start capture”."))
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(36)
        self.prompt = QLabel("")  # the head-turn challenge's instruction, large
        self.prompt.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.prompt.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.prompt.setFont(font)
        self.prompt.hide()

        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListView.ViewMode.IconMode)
        self.thumbnails.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.thumbnails.setFlow(QListView.Flow.LeftToRight)
        self.thumbnails.setWrapping(False)
        self.thumbnails.setMovement(QListView.Movement.Static)
        self.thumbnails.setFixedHeight(THUMBNAIL + 40)
        self.thumbnails.itemSelectionChanged.connect(self._update_buttons)
        placeholder = QPixmap(THUMBNAIL, THUMBNAIL)
        placeholder.fill(QColor(215, 215, 215))
        self._placeholder = QIcon(placeholder)

        self.capture_button = QPushButton(self.tr("Start capture"))
        self.capture_button.clicked.connect(self.toggle_capture)
        self.retake_button = QPushButton(self.tr("Retake selected"))
        self.retake_button.clicked.connect(self.retake_selected)
        self.save_button = QPushButton(self.tr("Save"))
        self.save_button.clicked.connect(self.save)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for button in (self.capture_button, self.retake_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.save_button, self.cancel_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.prompt)
        layout.addWidget(self.status)
        layout.addWidget(self.thumbnails)
        layout.addLayout(buttons)

        controller.set_enrollment(True)
        controller.packetReady.connect(self.on_packet)
        controller.statusChanged.connect(self._on_source_status)
        self._on_source_status(controller.status)
        if controller.latest is not None:
            self.preview.show_frame(controller.latest.qimage, controller.latest.result)
        self._refresh_thumbnails()

    # -- state ------------------------------------------------------------------------------
    @property
    def taken(self) -> list[Sample]:
        return [sample for sample in self.samples if sample is not None]

    @property
    def complete(self) -> bool:
        return all(sample is not None for sample in self.samples)

    def _resize_samples(self, count: int) -> None:
        kept = [(s, p) for s, p in zip(self.samples, self.sample_poses) if s is not None][:count]
        self.samples = [s for s, _ in kept] + [None] * (count - len(kept))
        self.sample_poses = [p for _, p in kept] + [None] * (count - len(kept))
        self.pose_capture = None
        if self.capturing and self.use_poses and not self.complete:  # plan the capture again for the new count
            self.pose_capture = PoseCapture(self.samples, self.sample_poses)
            self._show_pose()
        elif self.capturing and self.complete:
            self.capturing = False
            self.prompt.hide()
        self._refresh_thumbnails()

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # -- capture ----------------------------------------------------------------------------
    def toggle_capture(self) -> None:
        if self.capturing:
            self.capturing = False
            if self.pose_capture is not None:
                self.prompt.hide()
            self._say(self.tr("Capture paused."))
        else:
            try:
                normalize_name(self.name_edit.text())
            except FaceAppError as error:
                self._say(str(error))
                self.name_edit.setFocus()
                return
            if self.complete:
                if not self.live_checked:
                    self.start_challenge()
                    return
                self._say(self.tr("All samples are taken: select one and press “Retake selected”, or Save."))
                return
            self.capturing = True
            if self.use_poses:
                if self.pose_capture is None:
                    self.pose_capture = PoseCapture(self.samples, self.sample_poses)
                self._show_pose()
            else:
                self._say(self.tr("Capturing sample {number} of {total}: look at the camera.").format(
                    number=self._next_slot() + 1, total=len(self.samples)))
        self._update_buttons()

    def _show_pose(self, problem: str | None = None) -> None:
        """The pose asked for, large, and where the capture stands (and what is wrong)."""
        capture = self.pose_capture
        pose = capture.pose if capture is not None else None
        if pose is None:
            self.prompt.hide()
            return
        instruction = INSTRUCTIONS[pose]
        self.prompt.setText(ARROWS.get(instruction, "") + translate("Poses", instruction))
        self.prompt.show()
        step, steps, taken, needed = capture.progress
        line = self.tr("Pose {step} of {steps}: view {taken} of {needed}").format(step=step, steps=steps, taken=taken, needed=needed)
        self._say(f"{line}: {problem_text(problem)}" if problem else line)

    def retake_selected(self) -> None:
        rows = sorted({index.row() for index in self.thumbnails.selectedIndexes()})
        if not rows:
            return
        for row in rows:
            self.samples[row] = None
        self.pose_capture = None
        self.live_checked = not self.use_challenge  # the check is made with the samples kept
        self._refresh_thumbnails()
        self.capturing = False
        self.toggle_capture()

    def _next_slot(self) -> int:
        return next((i for i, sample in enumerate(self.samples) if sample is None), len(self.samples))

    def start_challenge(self) -> None:
        """Ask for the head turns (random order); Save waits for them."""
        self.challenge = HeadTurnChallenge()
        self._clock.start()
        self.capturing = False
        self.prompt.show()
        self._show_prompt()
        self._say(self.tr("Last step, a liveness check: follow the instruction above within {seconds:g} s.").format(
            seconds=self.challenge.config.time_limit_s))
        self._update_buttons()

    def _show_prompt(self) -> None:
        text = self.challenge.prompt if self.challenge is not None else ""
        self.prompt.setText(ARROWS.get(text, "") + translate("Challenge", text))

    def _challenge_step(self, packet: FramePacket) -> None:
        faces = packet.result.faces
        yaw = yaw_degrees(faces[0].detection.landmarks) if len(faces) == 1 else None
        if yaw is not None and not self._same_face(faces[0].embedding):
            self.challenge.fail("the face doing the check is not the one in the samples")
            self._challenge_update(self.challenge.state)
            return
        self._challenge_update(self.challenge.step(time.monotonic(), yaw))

    def _same_face(self, embedding) -> bool:
        """Whether ``embedding`` is the samples' face (at the verification threshold)."""
        mean = np.mean([s.embedding for s in self.taken], axis=0)
        mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return float(np.asarray(embedding) @ mean) >= self._controller.recognizer.verification_threshold

    def _challenge_tick(self) -> None:
        """The clock runs on without frames (a stalled camera, nobody in view)."""
        if self.challenge is not None:
            self._challenge_update(self.challenge.step(time.monotonic(), None))

    def _challenge_update(self, state: ChallengeState) -> None:
        if state is ChallengeState.PASSED:
            self.live_checked, self.challenge = True, None
            self._clock.stop()
            self.prompt.setText(self.tr("✓ live"))
            self._say(self.tr("Liveness check passed. Save, or select a sample and retake it."))
        elif state is ChallengeState.FAILED:
            reason = self.challenge.reason
            self.challenge = None
            self._clock.stop()
            self.prompt.setText(self.tr("✗ liveness check failed"))
            self._say(self.tr("Liveness check failed ({reason}). Press “Check again” to retry.").format(reason=reason))
        else:
            self._show_prompt()
        self._update_buttons()

    def on_packet(self, packet: FramePacket) -> None:
        """A new processed frame: show it; while capturing, take it if it is good; during
        the liveness check, follow the head's turns."""
        self.preview.show_frame(packet.qimage, packet.result)
        if self.challenge is not None:
            self._challenge_step(packet)
            return
        if not self.capturing or packet.candidate is None:
            return
        slot = self._next_slot()
        total = len(self.samples)
        candidate = packet.candidate
        if self.pose_capture is not None:
            self._pose_step(candidate)
            return
        if candidate.sample is None:
            self._say(self.tr("Sample {number} of {total}: {problem}").format(number=slot + 1, total=total,
                                                                             problem=problem_text(candidate.problem)))
            return
        now = time.monotonic()
        if now - self._last_accepted < self._min_interval_s:
            return
        self._last_accepted = now
        self.samples[slot] = candidate.sample
        self._refresh_thumbnails()
        if self.complete:
            self.capturing = False
            if not self.live_checked:
                self.start_challenge()
                return
            self._say(self.tr("All {total} samples taken. Save, or select one and retake it.").format(total=total))
        else:
            self._say(self.tr("Sample {number} of {total} taken; move your head a little for the next one.").format(
                number=slot + 1, total=total))
        self._update_buttons()

    def _pose_step(self, candidate) -> None:
        """A judged frame during the pose-diverse capture: a candidate of the pose asked for,
        or what to change; when every pose has its views, keep those that add most."""
        if candidate.sample is None:
            self._show_pose(candidate.problem)
            return
        now = time.monotonic()
        if now - self._last_accepted < self._min_interval_s:
            return
        problem = self.pose_capture.offer(candidate.sample, yaw_degrees(candidate.sample.face.detection.landmarks))
        if problem is not None:
            self._show_pose(problem)
            return
        self._last_accepted = now
        if not self.pose_capture.done:
            self._show_pose()
            return
        self.samples, self.sample_poses = self.pose_capture.finish()
        self.pose_capture = None
        self.capturing = False
        self.prompt.hide()
        self._refresh_thumbnails()
        if not self.live_checked:
            self.start_challenge()
            return
        self._say(self.tr("All {total} samples taken. Save, or select one and retake it.").format(total=len(self.samples)))
        self._update_buttons()

    def _on_source_status(self, status: SourceStatus) -> None:
        if status.state in (SourceState.FAILED, SourceState.STOPPED, SourceState.ENDED) and self._controller.latest is None:
            self.preview.clear(translate("EnrollDialog", NO_CAMERA))
        self.preview.set_banner(status.message if status.state is SourceState.RECONNECTING else "")

    def _refresh_thumbnails(self) -> None:
        selected = {index.row() for index in self.thumbnails.selectedIndexes()}
        self.thumbnails.clear()
        for number, sample in enumerate(self.samples, 1):
            item = QListWidgetItem(f"{number}")
            if sample is not None:
                item.setIcon(icon_from_bgr(sample.face.image, THUMBNAIL))
                pose = self.sample_poses[number - 1]
                tip = self.tr("quality {score:.2f}").format(score=sample.quality.score)
                item.setToolTip(tip if pose is None else f"{tip}; {translate('Poses', INSTRUCTIONS[pose])}")
            else:
                item.setIcon(self._placeholder)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                item.setToolTip(self.tr("not taken yet"))
            self.thumbnails.addItem(item)
            item.setSelected(number - 1 in selected and sample is not None)
        self._update_buttons()

    def _update_buttons(self) -> None:
        checking = self.challenge is not None
        again = self.complete and not self.live_checked and not checking
        self.capture_button.setText(self.tr("Stop capture") if self.capturing else
                                    self.tr("Check again") if again else self.tr("Start capture"))
        self.capture_button.setEnabled(not checking)
        self.retake_button.setEnabled(bool(self.thumbnails.selectedIndexes()) and not checking)
        self.save_button.setEnabled(self.complete and self.live_checked)

    # -- save / cancel ---------------------------------------------------------------------
    def save(self) -> None:
        if not self.complete:
            self._say(self.tr("Take all the samples first."))
            return
        if not self.live_checked:
            self._say(self.tr("The liveness check has not passed yet."))
            return
        self.capturing = False
        try:
            saved = save_samples(self._gallery, self._controller.recognizer, self.name_edit.text(), self.taken, self._asker, self)
        except FaceAppError as error:
            self._say(" ".join(str(error).split()))
            return
        if saved is None:
            self._say(self.tr("Not saved. Change the name, or press Save again."))
            return
        self.saved = saved
        self.accept()

    def done(self, result: int) -> None:
        """Closing either way stops the per-frame judging and leaves the camera to the view."""
        self.capturing = False
        self._clock.stop()
        self._controller.set_enrollment(False)
        for signal, slot in ((self._controller.packetReady, self.on_packet), (self._controller.statusChanged, self._on_source_status)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        super().done(result)
