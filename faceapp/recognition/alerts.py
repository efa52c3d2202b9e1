"""Alerts: rules on appearances (:class:`~faceapp.recognition.memory.Appearance`) and
what to do when one matches.

A rule names who it is for (a person, ``unknown``: any unknown face, ``known``: any
enrolled person, or ``anyone``), optionally a source, and a cool-down: after an alert for
someone, the same rule stays silent for them for ``cooldown_s``. Actions are callables
taking the event's JSON; :class:`CommandAction` runs a command with the JSON on its
standard input (for home automation), on its own thread so the live loop never waits.
The desktop app adds a notification and a sound (``faceapp.gui.alerts``).
"""

from __future__ import annotations

import json
import logging
import queue
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faceapp.errors import ConfigError

logger = logging.getLogger(__name__)

SPECIAL = ("unknown", "known", "anyone")


@dataclass(frozen=True)
class AlertChoice:
    """An alert as a user sets it up (the desktop app keeps one in its settings)."""

    who: str = ""  # "" (off), unknown, known, anyone, or a name
    cooldown_s: float = 60.0
    notify: bool = True  # a desktop notification
    sound: bool = False
    command: str = ""  # run with the event's JSON on its standard input
    source: str = ""  # only for this source (its text: a file, a stream URL, "webcam 0"); "": any


@dataclass(frozen=True)
class AlertRule:
    who: str  # a person's name, or one of SPECIAL
    source: str | None = None  # only this source (its text), else every source
    cooldown_s: float = 60.0

    def matches(self, event) -> bool:
        if self.source is not None and event.source != self.source:
            return False
        if self.who == "anyone":
            return True
        if self.who == "unknown":
            return event.person is None
        if self.who == "known":
            return event.person is not None
        return event.person == self.who

    @classmethod
    def parse(cls, text: str, cooldown_s: float = 60.0, source: str | None = None) -> AlertRule:
        who = text.strip()
        if not who:
            raise ConfigError("an alert needs someone: a name, 'unknown', 'known' or 'anyone'")
        return cls(who.lower() if who.lower() in SPECIAL else who, source, float(cooldown_s))


class Alerts:
    """Calls every action for each event that a rule matches (once per cool-down)."""

    def __init__(self, rules: Sequence[AlertRule], actions: Sequence[Callable[[dict], None]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rules, self.actions, self.clock = list(rules), list(actions), clock
        self._last: dict[tuple, float] = {}
        self.fired = 0

    def __call__(self, event) -> bool:
        now = self.clock()
        whom = event.person or (f"visitor {event.visitor}" if event.visitor is not None else "unknown")
        for number, rule in enumerate(self.rules):
            if not rule.matches(event):
                continue
            key = (number, whom)
            if key in self._last and now - self._last[key] < rule.cooldown_s:
                continue
            self._last[key] = now
            data = event.to_json()
            for action in self.actions:
                try:
                    action(data)
                except Exception:  # an action's failure never stops recognition
                    logger.exception("alert action failed")
            self.fired += 1
            return True
        return False


class CommandAction:
    """Runs ``command`` (a shell-like string, split with shlex; no shell) once per alert
    with the event's JSON on standard input, one at a time on a background thread;
    ``timeout_s`` ends a command that hangs. Failures are logged, never raised."""

    def __init__(self, command: str, timeout_s: float = 30.0) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as error:
            raise ConfigError(f"--on-event: cannot read the command {command!r} ({error})") from None
        if not self.argv:
            raise ConfigError("--on-event needs a command")
        self.timeout_s = timeout_s
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="faceapp-alert-command", daemon=True)
        self._thread.start()
        self.runs = 0
        self.failures = 0

    def __call__(self, event: dict) -> None:
        self._jobs.put(json.dumps(event, ensure_ascii=False) + "\n")

    def _run(self) -> None:
        while (payload := self._jobs.get()) is not None:
            try:
                done = subprocess.run(self.argv, input=payload, text=True, capture_output=True, timeout=self.timeout_s, check=False)
                self.runs += 1
                if done.returncode != 0:
                    self.failures += 1
                    logger.warning("alert command %s exited with status %d: %s", self.argv[0], done.returncode,
                                   " ".join(done.stderr.split())[:200])
            except (OSError, subprocess.TimeoutExpired) as error:
                self.failures += 1
                logger.warning("alert command %s failed: %s", self.argv[0], error)
            finally:
                self._jobs.task_done()

    def close(self, timeout_s: float = 30.0) -> None:
        """Wait for the commands queued so far, then stop the thread."""
        self._jobs.put(None)
        self._thread.join(timeout_s)
