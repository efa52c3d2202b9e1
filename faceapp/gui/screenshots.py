"""Screenshots of the windows for the docs, taken from inside the running app.

Run the app under Xvfb with ``FACEAPP_SCREENSHOTS=docs/screenshots`` on a video where
enrolled people appear (see ``docs/gui.md``). A timer then waits for the live view to
name two people, grabs the main window, opens the enroll dialog and waits until its
pose-diverse capture has its frontal views and asks for a turn to the left (the video's
faces never turn), grabs it, then the gallery manager, the settings and the About dialog,
and quits. In another language than English the files are named ``<window>.<locale>.png``.
With ``FACEAPP_SCREENSHOTS_PANELS=1`` (and a stranger in the video) it waits instead for
an unknown visitor and a filled timeline, and saves ``memory-panels.png`` and
``memory-visitors.png``. With ``FACEAPP_SCREENSHOTS_CHALLENGE=1`` it takes three
enrollment samples (without the pose steps) and saves ``enroll-challenge.png`` when the
head-turn liveness check asks for a turn.
Images are saved as 8-bit PNGs to stay small.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget

logger = logging.getLogger(__name__)

POLL_MS = 200
PANELS_ENV = "FACEAPP_SCREENSHOTS_PANELS"  # set: screenshots of the people-memory panels instead
CHALLENGE_ENV = "FACEAPP_SCREENSHOTS_CHALLENGE"  # set: the enroll dialog's liveness check instead


def save_png(widget: QWidget, path: Path, colours: int = 256) -> Path:
    """Grab ``widget`` as it is on screen and save it as a palette PNG."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    if colours:
        image = image.convertToFormat(QImage.Format.Format_Indexed8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), "PNG", 0):
        raise OSError(f"cannot write {path}")
    logger.info("screenshot %s (%d KB)", path, path.stat().st_size // 1024)
    return path


class _Steps:
    """Runs ``(condition, action)`` steps in order, polling; a step whose condition is
    not met within ``timeout_s`` runs anyway (a screenshot of what is there)."""

    def __init__(self, steps: list[tuple[Callable[[], bool], Callable[[], None]]], timeout_s: float) -> None:
        self._steps = steps
        self._timeout_s = timeout_s
        self._since = time.monotonic()
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)
        self._timer.start(POLL_MS)

    def _tick(self) -> None:
        if not self._steps:
            self._timer.stop()
            return
        condition, action = self._steps[0]
        overdue = time.monotonic() - self._since > self._timeout_s
        if condition() or overdue:
            if overdue:
                logger.warning("screenshot step timed out; taking it as it is")
            self._steps.pop(0)
            self._since = time.monotonic()
            try:
                action()
            except Exception:
                logger.exception("screenshot step failed")
                QApplication.quit()


def take_screenshots(window, folder: str | Path, timeout_s: float = 60.0) -> None:
    """Schedule the screenshots of ``window`` (a MainWindow) into ``folder``, then quit."""
    from PySide6.QtCore import QLocale

    folder = Path(folder)
    window.resize(1040, 700)
    state: dict = {}
    language = QLocale().name()
    suffix = "" if language.startswith("en") or language == "C" else f".{language}"

    def shot(widget: QWidget, name: str) -> None:
        save_png(widget, folder / f"{name}{suffix}.png")

    def named_two() -> bool:
        names = set(window.view.overlay_names()) - {"Unknown"}
        return len(names) >= 2

    def open_enroll() -> None:
        shot(window, "main-window")
        window.settings.enroll_poses = True
        dialog = window.open_enroll_dialog()
        dialog.resize(560, 620)
        dialog.name_edit.setText("Barack")
        dialog.toggle_capture()
        state["enroll"] = dialog

    def asking_for_left() -> bool:
        """On the left-turn step for 1.5 s (its "turn a little more" shown, in any language)."""
        capture = state["enroll"].pose_capture
        if capture is None or capture.pose != "left":
            return False
        since = state.setdefault("left_since", time.monotonic())
        return time.monotonic() - since > 1.5

    def open_gallery() -> None:
        dialog = state["enroll"]
        shot(dialog, "enroll-dialog")
        dialog.reject()
        gallery = window.open_gallery_dialog()
        if gallery.visible_names():
            gallery.select(gallery.visible_names()[0])
        state["gallery"] = gallery

    def open_settings() -> None:
        shot(state["gallery"], "gallery-dialog")
        state["gallery"].accept()
        state["settings"] = window.open_settings_dialog()

    def open_about() -> None:
        shot(state["settings"], "settings-dialog")
        state["settings"].reject()
        state["about"] = window.open_about_dialog()

    def finish() -> None:
        shot(state["about"], "about-dialog")
        state["about"].reject()
        window.close()

    def panels_filled() -> bool:
        window.unknowns_dock.refresh_if_changed()
        window.timeline_dock.refresh_if_changed()
        return bool(window.unknowns_dock.visitor_ids()) and window.timeline_dock.list.count() >= 3 and any(
            label.startswith("Unknown #") for label in window.view.overlay_names())

    def shoot_panels() -> None:
        window.in_view_dock.show_packet(window.controller.latest, force=True)
        shot(window, "memory-panels")
        window.unknowns_dock.raise_()
        window.unknowns_dock.refresh()
        shot(window, "memory-visitors")
        window.close()

    if os.environ.get(CHALLENGE_ENV):  # the enroll dialog's head-turn liveness check
        def start_enroll() -> None:
            dialog = window.open_enroll_dialog()
            dialog.resize(560, 660)
            dialog.count_spin.setValue(3)
            dialog.name_edit.setText("Barack")
            dialog.toggle_capture()
            state["enroll"] = dialog

        def asking_to_turn() -> bool:
            challenge = state["enroll"].challenge
            return challenge is not None and challenge.prompt.startswith("turn")

        def shoot_challenge() -> None:
            shot(state["enroll"], "enroll-challenge")
            state["enroll"].reject()
            window.close()

        window.settings.enroll_challenge = True
        window.settings.enroll_poses = False  # the video's faces cannot turn: straight to the check
        state["steps"] = _Steps([(lambda: window.controller.latest is not None, start_enroll),
                                 (asking_to_turn, shoot_challenge)], timeout_s)
        window._screenshot_steps = state["steps"]
        return
    if os.environ.get(PANELS_ENV):  # the people-memory panels, with a stranger in view
        window.resize(1200, 720)
        state["steps"] = _Steps([(panels_filled, shoot_panels)], timeout_s)
        window._screenshot_steps = state["steps"]
        return
    state["steps"] = _Steps(
        [
            (named_two, open_enroll),
            (asking_for_left, open_gallery),
            (lambda: True, open_settings),
            (lambda: True, open_about),
            (lambda: True, finish),
        ],
        timeout_s,
    )
    window._screenshot_steps = state["steps"]  # keep the timer alive with the window
