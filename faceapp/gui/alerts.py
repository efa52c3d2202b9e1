"""Alerts in the desktop app: the rule chosen in the settings, and what it does.

:class:`~faceapp.recognition.alerts.AlertChoice` is what the settings keep: for whom (nobody, ``unknown``, ``known``,
``anyone`` or a person's name), a cool-down, and the actions: a desktop notification
(QSystemTrayIcon, where the desktop has a tray), a sound, a command run with the event's
JSON on its standard input. :class:`GuiAlerts` applies it to every
:class:`~faceapp.recognition.memory.Appearance` the recognition thread reports; the rule
itself is the core's (:mod:`faceapp.recognition.alerts`). Every alert also shows in the
status line.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from faceapp.errors import FaceAppError
from faceapp.gui.i18n import translate
from faceapp.recognition.alerts import AlertChoice, AlertRule, Alerts, CommandAction

if TYPE_CHECKING:
    from faceapp.gui.workers.controller import LiveController

logger = logging.getLogger(__name__)


class AlertsWindow(Protocol):
    settings: object  # AppSettings: its ``alerts`` is an AlertChoice
    controller: LiveController

    def say(self, text: object, ms: int = 8000) -> None: ...


class GuiAlerts:
    """Runs the alert rule of the settings on the events of ``window``'s controller."""

    def __init__(self, window: AlertsWindow) -> None:
        self.window = window
        self.fired: list[dict] = []
        self._tray: QSystemTrayIcon | None = None
        self._command: CommandAction | None = None
        self._alerts: Alerts | None = None
        window.controller.appeared.connect(self.on_event)
        self.configure(window.settings.alerts)

    def configure(self, choice: AlertChoice) -> None:
        """Use ``choice`` from now on (a bad command is reported, the rest still works)."""
        self.close()
        self.choice = choice
        if not choice.who:
            self._alerts = None
            return
        actions = [self._show]
        if choice.notify and QSystemTrayIcon.isSystemTrayAvailable():
            from faceapp.gui.icons import app_icon

            self._tray = QSystemTrayIcon(app_icon())
            self._tray.show()
            actions.append(self._notify)
        if choice.sound:
            actions.append(lambda _event: QApplication.beep())
        if choice.command.strip():
            try:
                self._command = CommandAction(choice.command)
                actions.append(self._command)
            except FaceAppError as error:
                self.window.say(error)
        self._alerts = Alerts([AlertRule.parse(choice.who, choice.cooldown_s, choice.source.strip() or None)], actions)

    def on_event(self, event) -> None:
        if self._alerts is not None:
            self._alerts(event)

    def _text(self, event: dict) -> str:
        return translate("Alerts", "{label} appeared ({source})").format(label=event["label"], source=event["source"])

    def _show(self, event: dict) -> None:
        self.fired = [*self.fired[-99:], event]  # the last hundred, for the status line and tests
        self.window.say(self._text(event))

    def _notify(self, event: dict) -> None:
        if self._tray is not None:
            self._tray.showMessage("FaceApp", self._text(event), QSystemTrayIcon.MessageIcon.Information, 8000)

    def close(self) -> None:
        if self._command is not None:
            self._command.close(5.0)
            self._command = None
        if self._tray is not None:
            self._tray.hide()
            self._tray = None

__all__ = ["AlertChoice", "GuiAlerts"]
