"""A server gallery's listener: one thread on its own connection that LISTENs to the
gallery's channel and keeps its change counters (``revision``, ``memory_revision``)
current, so reading them costs no round trip; it reconnects with back-off and says when
the server is away or does not answer.

Every transaction that bumps a counter notifies ``faceapp_gallery`` with ``"counter
value"``; PostgreSQL delivers it at commit, to every listening desktop. A value is taken
as it is (not only when larger: a gallery restored from a backup counts from lower
again), and anything malformed on the channel is ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from faceapp.storage.schema import one_line

logger = logging.getLogger(__name__)

CHANNEL = "faceapp_gallery"
COUNTERS = ("revision", "memory_revision")
#: The listener checks its connection this often; a server silent for STALE_S is reported.
BEAT_S, STALE_S = 0.5, 5.0


def parse(payload: str) -> tuple[str, int] | None:
    """``(counter, value)`` of a notification, or None when it is not one of ours."""
    key, _, value = str(payload).partition(" ")
    if key not in COUNTERS or not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    return key, int(value)


class Listener:
    """The thread (see the module docstring). ``connect()`` gives a configured autocommit
    connection; ``on_problem(text | None)`` is told when the connection is lost or back."""

    def __init__(self, connect: Callable[[], Any], on_problem: Callable[[str | None], None]) -> None:
        self._connect, self._on_problem = connect, on_problem
        self.counters: dict[str, int] = {}
        self.listening = threading.Event()
        self.last_error: str | None = None
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faceapp-gallery-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=3)

    @property
    def silent_s(self) -> float:
        """How long the server has not answered the listener (0 when it just did)."""
        return time.monotonic() - self._beat if self.listening.is_set() else 0.0

    def _run(self) -> None:
        import psycopg

        delay = 0.25
        try:
            while not self._stop.is_set():
                try:
                    with self._connect() as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        for key in COUNTERS:
                            row = conn.execute("SELECT int_value FROM meta WHERE key = %s", (key,)).fetchone()
                            if row and row[0] is not None:
                                self.counters[key] = int(row[0])  # what was missed while away
                        self._beat = time.monotonic()
                        self.listening.set()
                        self.last_error = None
                        self._on_problem(None)
                        delay = 0.25
                        while not self._stop.is_set():
                            for note in conn.notifies(timeout=BEAT_S):
                                parsed = parse(note.payload)
                                if parsed is not None:
                                    self.counters[parsed[0]] = parsed[1]
                            conn.execute("SELECT 1")  # notices a dead connection between notifications
                            self._beat = time.monotonic()
                except psycopg.Error as e:
                    self.listening.clear()
                    if self._stop.is_set():
                        return
                    self.last_error = one_line(e)
                    self._on_problem(f"connection lost ({self.last_error}); reconnecting")
                    self._stop.wait(delay)
                    delay = min(delay * 2, 8.0)
        except Exception:  # never a silent dead listener: say so, and stop claiming to listen
            logger.exception("the gallery's listener stopped")
            self._on_problem("the gallery's change listener stopped; reopen the gallery")
        finally:
            self.listening.clear()
