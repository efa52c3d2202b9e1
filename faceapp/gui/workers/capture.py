"""The capture worker: reads frames from a source on its own thread.

It runs in a loop on a :class:`~PySide6.QtCore.QThread` (the worker object is moved
there) and hands each frame, as its own copy, to a :class:`~faceapp.media.latest.LatestSlot`:
if recognition has not taken the previous frame yet, that stale frame is dropped. A
source that fails after it has worked (camera unplugged, stream dropped, a fake source
raising or yielding None) leads to the ``RECONNECTING`` state and reopening with
exponential back-off; a source that cannot be opened at all leads to ``FAILED``. A
finished video file or folder loops or ends. Stopping is cooperative: :meth:`stop` sets
an event that every wait in the loop watches.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from faceapp.gui.qtcompat import emit
from faceapp.media.latest import LatestSlot

logger = logging.getLogger(__name__)

#: Opens the source (may raise, e.g. SourceError); returns an iterable of frames, each a
#: BGR uint8 ``(H, W, 3)`` array or an object with an ``image`` attribute (faceapp's
#: ``Frame``); ``close()`` is called on it when present. Yielding None means "failed".
Opener = Callable[[], Iterable]

DEFAULT_PACE_FPS = 25.0
DEFAULT_STALL_TIMEOUT_S = 5.0  # a live source silent this long is reconnected


class TimedSource:
    """A live source read through :func:`faceapp.media.sources.frames_with_timeout`: a camera
    that stops answering raises SourceError after ``timeout_s`` (so the capture worker
    reconnects) instead of blocking forever. ``close()`` closes the wrapped source."""

    def __init__(self, source: Iterable, timeout_s: float) -> None:
        self.source = source
        self.timeout_s = float(timeout_s)
        self._frames: Iterator | None = None

    @property
    def fps(self) -> float:
        return float(getattr(self.source, "fps", 0.0) or 0.0)

    def __iter__(self) -> Iterator:
        from faceapp.media.sources import frames_with_timeout

        self._frames = frames_with_timeout(self.source, self.timeout_s)
        return self._frames

    def close(self) -> None:
        frames, self._frames = self._frames, None
        if frames is not None:
            try:
                frames.close()  # stops the reader thread once its blocked read returns
            except Exception:
                logger.debug("closing the frame reader failed", exc_info=True)
        close = getattr(self.source, "close", None)
        if callable(close):
            close()


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: ``initial_s * factor**attempt``, capped."""

    initial_s: float = 0.5
    factor: float = 2.0
    maximum_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnection attempt ``attempt`` (0-based)."""
        return float(min(self.maximum_s, self.initial_s * self.factor ** max(0, attempt)))


class SourceState(enum.Enum):
    OPENING = "opening"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SourceStatus:
    """Where a source stands, with one line for the user. ``generation`` tells which
    capture it comes from (the controller ignores statuses of replaced sources)."""

    state: SourceState
    message: str
    generation: int = 0
    attempt: int = 0
    retry_in_s: float = 0.0


@dataclass(frozen=True)
class CapturedFrame:
    """One frame handed from capture to recognition. ``image`` is the capture's own copy
    (BGR uint8 ``(H, W, 3)``), never touched again by the capture thread."""

    image: np.ndarray
    index: int
    generation: int
    captured_at: float  # time.perf_counter()
    label: str = ""


class _Failed(Exception):
    """Internal: the source stopped working (message says why)."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def own_copy(image: np.ndarray, max_side: int) -> np.ndarray:
    """A private BGR uint8 copy of ``image``, shrunk to at most ``max_side`` pixels."""
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise _Failed(f"the source gave something that is not an image ({type(image).__name__})")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] != 3:
        raise _Failed(f"the source gave an image with {image.shape[2]} channels")
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.array(image, copy=True, order="C")


class CaptureWorker(QObject):
    """Reads one source until stopped. Create it, move it to a QThread, connect
    ``thread.started`` to :meth:`run`; call :meth:`stop` from any thread."""

    statusChanged = Signal(object)  # SourceStatus
    finished = Signal()

    def __init__(
        self,
        opener: Opener,
        frames: LatestSlot[CapturedFrame],
        *,
        description: str,
        live: bool,
        loop: bool = False,
        generation: int = 0,
        backoff: Backoff | None = None,
        pace_fps: float | None = None,
        max_side: int = 1280,
        stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self._stall_timeout_s = stall_timeout_s
        self._opener = opener
        self._frames = frames
        self._description = description
        self._live = live
        self._loop = loop
        self._generation = generation
        self._backoff = backoff or Backoff()
        self._pace_fps = pace_fps
        self._max_side = max_side
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._source: object | None = None

    # -- control, from any thread ---------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()

    def set_loop(self, loop: bool) -> None:
        self._loop = bool(loop)

    # -- the loop, on the worker's thread --------------------------------------------
    @Slot()
    def run(self) -> None:
        """Capture until stopped, failed or ended; always emits ``finished``."""
        try:
            self._run()
        except Exception as error:  # never let a source take the app down
            logger.exception("capture of %s stopped", self._description)
            self._emit(SourceState.FAILED, f"{self._description}: {_one_line(error)}")
        finally:
            self._close()
            if self._stop.is_set():
                self._emit(SourceState.STOPPED, f"{self._description}: stopped")
            emit(self.finished)

    def _run(self) -> None:
        self._emit(SourceState.OPENING, f"opening {self._description}…")
        try:
            frames = self._open()
        except Exception as error:  # noqa: BLE001 -- any source, any failure: reported, never fatal
            logger.info("cannot open %s: %s", self._description, error)
            self._emit(SourceState.FAILED, _one_line(error))
            return
        failures = 0  # consecutive failures without a frame in between
        delivered = 0  # frames since the last (re)open
        index = 0
        next_due = time.perf_counter()
        while not self._stop.is_set():
            if self._paused.is_set() and not self._live:
                self._stop.wait(0.05)
                next_due = time.perf_counter()
                continue
            try:
                item = next(frames)
                if item is None:
                    raise _Failed("the source stopped sending frames")
                image = own_copy(getattr(item, "image", item), self._max_side)
            except StopIteration:
                self._close()
                if self._live:
                    reason: str | None = "the source stopped sending frames"
                elif self._loop and delivered:
                    reason = None  # play it again
                else:
                    self._emit(SourceState.ENDED, f"end of {self._description}")
                    return
            except Exception as error:  # noqa: BLE001 -- any source, any failure: reported, never fatal
                logger.warning("%s failed: %s", self._description, error)
                self._close()
                reason = _one_line(error)
            else:
                if delivered == 0:
                    self._emit(SourceState.LIVE, self._description)
                failures = 0
                delivered += 1
                if self._paused.is_set():
                    continue  # a live source keeps being read (so it stays fresh) but nothing is shown
                captured = CapturedFrame(image, index, self._generation, time.perf_counter(), getattr(item, "label", ""))
                self._frames.put(captured)
                index += 1
                if not self._live:
                    next_due = self._pace(next_due)
                continue
            delivered = 0
            if reason is None:
                try:
                    frames = self._open()
                    continue
                except Exception as error:  # noqa: BLE001 -- any source, any failure: reported, never fatal
                    reason = _one_line(error)
            reopened = self._reconnect(reason, failures)
            if reopened is None:
                return
            frames, failures = reopened, failures + 1

    def _open(self) -> Iterator:
        source = self._opener()
        if self._live and self._stall_timeout_s:
            source = TimedSource(source, self._stall_timeout_s)
        self._source = source
        return iter(self._source)

    def _close(self) -> None:
        source, self._source = self._source, None
        close = getattr(source, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing a broken source may fail too; nothing to do
                logger.debug("closing %s failed", self._description, exc_info=True)

    def _reconnect(self, reason: str, failures: int) -> Iterator | None:
        """Reopen with back-off until it works (the iterator) or we are stopped (None)."""
        attempt = failures
        while True:
            delay = self._backoff.delay(attempt)
            attempt += 1
            self._emit(
                SourceState.RECONNECTING,
                f"{self._description}: {reason} — reconnecting (attempt {attempt}, in {delay:.1f} s)",
                attempt,
                delay,
            )
            if self._stop.wait(delay):
                return None
            try:
                return self._open()
            except Exception as error:  # noqa: BLE001 -- any source, any failure: reported, never fatal
                reason = _one_line(error)
                logger.info("reconnecting to %s failed: %s", self._description, reason)

    def _pace(self, next_due: float) -> float:
        """Wait until the next frame is due (files and folders play in real time)."""
        fps = self._pace_fps or getattr(self._source, "fps", 0.0) or DEFAULT_PACE_FPS
        next_due += 1.0 / fps
        now = time.perf_counter()
        if next_due > now:
            self._stop.wait(next_due - now)
            return next_due
        return now if now - next_due > 1.0 else next_due  # far behind: do not race to catch up

    def _emit(self, state: SourceState, message: str, attempt: int = 0, retry_in_s: float = 0.0) -> None:
        emit(self.statusChanged, SourceStatus(state, message, self._generation, attempt, retry_in_s))
