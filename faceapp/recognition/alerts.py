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
import os
import queue
import shlex
import shutil
import signal
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
        # One cool-down per person, per visitor, and per track of an unknown not remembered yet.
        whom = event.person or (f"visitor {event.visitor}" if event.visitor is not None else
                                f"unknown {event.source} {event.track_id}")
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

    def __init__(self, command: str, timeout_s: float = 10.0) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as error:
            raise ConfigError(f"--on-event: cannot read the command {command!r} ({error})") from None
        if not self.argv:
            raise ConfigError("--on-event needs a command")
        if shutil.which(self.argv[0]) is None:
            raise ConfigError(f"--on-event: no program {self.argv[0]!r} (not found, or not executable)")
        self._current: subprocess.Popen | None = None
        self.dropped = 0
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
                self._current = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
                _, err = self._current.communicate(payload, timeout=self.timeout_s)
                self.runs += 1
                if self._current.returncode != 0:
                    self.failures += 1
                    logger.warning("alert command %s exited with status %d: %s", self.argv[0], self._current.returncode,
                                   " ".join((err or "").split())[:200])
            except subprocess.TimeoutExpired:
                self.failures += 1
                self._kill()
                logger.warning("alert command %s took more than %g s: stopped", self.argv[0], self.timeout_s)
            except OSError as error:
                self.failures += 1
                logger.warning("alert command %s failed: %s", self.argv[0], error)
            finally:
                self._current = None

    def _kill(self) -> None:
        """Stop the running command and whatever it started (its own process group)."""
        process = self._current
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                process.kill()
            process.wait()

    def close(self, timeout_s: float = 30.0) -> None:
        """Run the commands queued so far (each within its time limit), then stop; what
        is still queued after ``timeout_s`` is dropped (and said), a running command stopped."""
        self._jobs.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            while True:
                try:
                    if self._jobs.get_nowait() is not None:
                        self.dropped += 1
                except queue.Empty:
                    break
            self._jobs.put(None)
            self._kill()
            self._thread.join(5.0)
            if self.dropped:
                logger.warning("%d alert command(s) were not run (the command is too slow)", self.dropped)
