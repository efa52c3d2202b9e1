"""Applying the settings dialog's choices to the running app, and keeping them.

:func:`current_choice` reads what the app does now; :func:`apply_choice` makes the app do
what was chosen: the webcam and capture size (the webcam in view is reopened), the
threshold, the minimum face size, tracking, embeddings-only mode and snapshot blur
(through the Privacy menu, which asks before deleting thumbnails), the gallery (opened,
asking for its passphrase, and swapped in), and the language (from the next start).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Protocol

from faceapp.errors import FaceAppError
from faceapp.gui.dialogs.settings import SettingsChoice
from faceapp.gui.i18n import translate
from faceapp.media.sources import SourceSpec
from faceapp.storage.locations import same_location

if TYPE_CHECKING:
    from faceapp.gui.alerts import GuiAlerts
    from faceapp.gui.privacy_menu import PrivacyMenu
    from faceapp.gui.settings import AppSettings
    from faceapp.gui.workers.controller import LiveController
    from faceapp.recognition.pipeline import Recognizer
    from faceapp.storage.gallery import Gallery

logger = logging.getLogger(__name__)


class SettingsWindow(Protocol):
    """What applying settings needs of its window (the main window)."""

    settings: AppSettings
    gallery: Gallery
    recognizer: Recognizer
    controller: LiveController
    privacy: PrivacyMenu
    alerts: GuiAlerts

    def say(self, text: object, ms: int = 8000) -> None: ...
    def open_spec(self, spec: SourceSpec, loop: bool | None = None) -> None: ...
    def set_decision(self, rule: str) -> None: ...


def current_choice(window: SettingsWindow) -> SettingsChoice:
    """What the app does now, as the settings dialog shows it."""
    try:
        embeddings_only = window.gallery.embeddings_only
    except FaceAppError:
        embeddings_only = window.privacy.embeddings_only_action.isChecked()
    return SettingsChoice(
        camera=window.settings.camera,
        capture_size=window.settings.capture_size,
        decision=window.recognizer.decision.to_text(),
        min_face_size=window.recognizer.detector.config.min_face_size,
        tracking=window.controller.tracking,
        liveness_badge=window.controller.liveness_badge,
        embeddings_only=embeddings_only,
        snapshot_blur=window.settings.snapshot_blur,
        gallery_path=window.gallery.reopen_location,
        language=window.settings.language,
        alerts=window.settings.alerts,
        remember=window.settings.remember,
        retention_days=_retention(window),
        people=tuple(p.name for p in _people(window)),
    )


def _retention(window) -> float:
    try:
        return window.gallery.retention_days
    except FaceAppError:
        return 30.0


def _people(window) -> list:
    try:
        return window.gallery.people()
    except FaceAppError:
        return []


def set_min_face_size(recognizer, value: int) -> None:
    """Faces smaller than ``value`` pixels are ignored from the next frame on (the
    detector's configuration is one immutable object, swapped whole)."""
    detector = recognizer.detector
    detector.config = dataclasses.replace(detector.config, min_face_size=int(value))


def apply_choice(window: SettingsWindow, choice: SettingsChoice) -> None:
    """Make the running app follow ``choice``, and remember it."""
    before = current_choice(window)
    settings = window.settings
    settings.camera, settings.capture_size = choice.camera, choice.capture_size
    spec = window.controller.spec
    if spec is not None and spec.kind == "webcam" and (choice.camera, choice.capture_size) != (before.camera, before.capture_size):
        window.open_spec(SourceSpec("webcam", str(choice.camera)))
    if choice.decision != before.decision:
        window.set_decision(choice.decision)
    if choice.min_face_size != before.min_face_size:
        set_min_face_size(window.recognizer, choice.min_face_size)
        settings.min_face_size = choice.min_face_size
    if choice.tracking != before.tracking:
        window.controller.set_tracking(choice.tracking)
        settings.tracking = choice.tracking
    if choice.liveness_badge != before.liveness_badge:
        window.controller.set_liveness_badge(choice.liveness_badge)
        settings.liveness_badge = choice.liveness_badge
    if choice.snapshot_blur != before.snapshot_blur:
        window.privacy.set_blur(choice.snapshot_blur)
    if choice.embeddings_only != before.embeddings_only:
        window.privacy.set_embeddings_only(choice.embeddings_only)
    if choice.alerts != before.alerts:
        settings.alerts = choice.alerts
        window.alerts.configure(choice.alerts)
    if choice.retention_days != before.retention_days:
        gallery, days = window.gallery, choice.retention_days
        window.controller.gallery_jobs.submit(lambda: gallery.set_retention_days(days))
    if choice.remember != before.remember:
        settings.remember = choice.remember
        window.controller.set_remember(choice.remember)
    if choice.language != before.language:
        settings.language = choice.language
        window.say(translate("Preferences", "The language changes when FaceApp starts again."))
    moved = not same_location(choice.gallery_path, before.gallery_path)
    if moved and window.privacy.switch_gallery(choice.gallery_path):
        settings.gallery_path = choice.gallery_path
