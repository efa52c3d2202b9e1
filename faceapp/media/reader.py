"""Reading a source for as long as it is wanted: the Qt-free capture loop shared by the
CLI (``faceapp recognize``) and the desktop app's capture thread.

A :class:`Reader` opens a source with its ``opener`` and yields its frames. A live source
(webcam, stream) that stops sending frames for ``stall_timeout_s`` (a camera whose
``read`` blocks forever), fails, or ends is reopened with exponential back-off
(:class:`Backoff`), for ever or up to ``max_reconnects`` times in a row; a file or folder
ends, or plays again with ``loop``. Every change of state (opening, live, reconnecting,
ended, failed, stopped) is reported once to ``on_status`` as a :class:`SourceStatus` with
one line for the user. :meth:`Reader.stop` (from any thread) ends the loop at its next
wait; nothing here blocks for longer than the stall timeout.

With ``raise_errors`` (the CLI), a source that cannot be opened, or that could not be
reopened within ``max_reconnects`` attempts, raises :class:`~faceapp.errors.SourceError`
from :meth:`Reader.frames`; without it (the GUI), that is a ``FAILED`` status.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from faceapp.errors import SourceError
from faceapp.media.sources import Frame, frames_with_timeout

logger = logging.getLogger(__name__)

#: Opens the source (may raise, e.g. SourceError); returns an iterable of frames, each a
#: BGR uint8 ``(H, W, 3)`` array or a :class:`~faceapp.media.sources.Frame`; ``close()``
#: is called on it when present. Yielding None means "failed".
Opener = Callable[[], Iterable]

DEFAULT_PACE_FPS = 25.0
DEFAULT_STALL_TIMEOUT_S = 5.0  # a live source silent this long is reconnected


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
    capture it comes from (the GUI ignores statuses of replaced sources)."""

    state: SourceState
    message: str
    generation: int = 0
    attempt: int = 0
    retry_in_s: float = 0.0


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: ``initial_s * factor**attempt``, capped."""

    initial_s: float = 0.5
    factor: float = 2.0
    maximum_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnection attempt ``attempt`` (0-based)."""
        return float(min(self.maximum_s, self.initial_s * self.factor ** max(0, attempt)))


class TimedSource:
    """A live source read through :func:`~faceapp.media.sources.frames_with_timeout`: a
    camera that stops answering raises SourceError after ``timeout_s`` instead of
    blocking forever. ``close()`` closes the wrapped source."""

    def __init__(self, source: Iterable, timeout_s: float) -> None:
        self.source = source
        self.timeout_s = float(timeout_s)
        self._frames: Iterator | None = None

    @property
    def fps(self) -> float:
        return float(getattr(self.source, "fps", 0.0) or 0.0)

    @property
    def len_hint(self) -> int | None:
        return getattr(self.source, "len_hint", None)

    def __iter__(self) -> Iterator:
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


class _Failed(Exception):
    """The source stopped working (the message says why)."""


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def own_copy(image: object, max_side: int | None = None) -> np.ndarray:
    """A private BGR uint8 ``(H, W, 3)`` copy of ``image`` (grey and BGRA converted),
    shrunk to at most ``max_side`` pixels when given. Raises _Failed for a non-image."""
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        raise _Failed(f"the source gave something that is not an image ({type(image).__name__})")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] != 3:
        raise _Failed(f"the source gave an image with {image.shape[2]} channels")
    height, width = image.shape[:2]
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.array(image, copy=True, order="C")


class Reader:
    """Reads one source until stopped, ended or failed (see the module docstring).

    ``pace_fps`` plays a file or folder in real time (the GUI; None: as fast as read,
    the CLI); ``max_side`` shrinks large frames; ``generation`` is copied into statuses.
    """

    def __init__(
        self,
        opener: Opener,
        *,
        description: str,
        live: bool,
        loop: bool = False,
        backoff: Backoff | None = None,
        pace: bool = False,
        pace_fps: float | None = None,
        max_side: int | None = None,
        stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
        max_reconnects: int | None = None,
        on_status: Callable[[SourceStatus], None] | None = None,
        raise_errors: bool = False,
        generation: int = 0,
    ) -> None:
        self._opener = opener
        self.description = description
        self.live = live
        self._loop = loop
        self._backoff = backoff or Backoff()
        self._pace = pace
        self._pace_fps = pace_fps
        self._max_side = max_side
        self._stall_timeout_s = stall_timeout_s
        self._max_reconnects = max_reconnects
        self._on_status = on_status
        self._raise = raise_errors
        self._generation = generation
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._source: object | None = None
        self.opens = 0
        self.reconnects = 0

    # -- control, from any thread ---------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def set_paused(self, paused: bool) -> None:
        """Paused: a file waits; a live source keeps being read (so it stays fresh) but
        its frames are dropped."""
        (self._paused.set if paused else self._paused.clear)()

    def set_loop(self, loop: bool) -> None:
        self._loop = bool(loop)

    @property
    def fps(self) -> float:
        """The open source's frame rate (0.0 when unknown)."""
        return float(getattr(self._source, "fps", 0.0) or 0.0)

    @property
    def len_hint(self) -> int | None:
        """The open source's frame count, when known (files and folders)."""
        return getattr(self._source, "len_hint", None)

    # -- the loop -----------------------------------------------------------------------
    def frames(self) -> Iterator[Frame]:
        """Yield every frame as a :class:`~faceapp.media.sources.Frame` with its own
        BGR copy, a running ``index`` and ``time_s`` (the file's time; for a live source
        seconds since the reader started). Closes the source however it ends."""
        try:
            yield from self._frames()
        finally:
            self._close()
            if self._stop.is_set():
                self._emit(SourceState.STOPPED, f"{self.description}: stopped")

    def _frames(self) -> Iterator[Frame]:
        self._emit(SourceState.OPENING, f"opening {self.description}…")
        try:
            frames = self._open()
        except Exception as error:  # noqa: BLE001 -- any source, any failure: reported, never fatal
            logger.info("cannot open %s: %s", self.description, error)
            self._fail(one_line(error))
            return
        failures = delivered = index = 0  # failures: consecutive reopenings without a frame
        started = time.monotonic()
        next_due = time.perf_counter()
        while not self._stop.is_set():
            if self._paused.is_set() and not self.live:
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
                if self.live:
                    reason: str | None = "the source stopped sending frames"
                elif self._loop and delivered:
                    reason = None  # play it again
                else:
                    self._emit(SourceState.ENDED, f"end of {self.description}")
                    return
            except Exception as error:  # noqa: BLE001 -- any source, any failure: reported, never fatal
                logger.warning("%s failed: %s", self.description, one_line(error))
                self._close()
                reason = one_line(error)
            else:
                if delivered == 0:
                    self._emit(SourceState.LIVE, self.description)
                failures = 0
                delivered += 1
                if self._paused.is_set():
                    continue
                time_s = time.monotonic() - started if self.live else float(getattr(item, "time_s", index / (self.fps or DEFAULT_PACE_FPS)))
                yield Frame(index, time_s, image, getattr(item, "label", ""))
                index += 1
                if self._pace and not self.live:
                    next_due = self._wait_for_next(next_due)
                continue
            delivered = 0
            if reason is None:
                try:
                    frames = self._open()
                    continue
                except Exception as error:  # noqa: BLE001
                    reason = one_line(error)
            frames = self._reconnect(reason, failures)
            if frames is None:
                return
            failures += 1

    def _open(self) -> Iterator:
        source = self._opener()
        self.opens += 1
        if self.live and self._stall_timeout_s:
            source = TimedSource(source, self._stall_timeout_s)
        self._source = source
        return iter(source)

    def _close(self) -> None:
        source, self._source = self._source, None
        close = getattr(source, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                logger.debug("closing %s failed", self.description, exc_info=True)

    def _reconnect(self, reason: str, failures: int) -> Iterator | None:
        """Reopen with back-off until it works (the iterator), we are stopped, or the
        attempts run out (None)."""
        attempt = failures
        while True:
            if self._max_reconnects is not None and attempt >= self._max_reconnects:
                self._fail(f"{self.description}: {reason}; gave up after {attempt} reconnection attempt(s)")
                return None
            delay = self._backoff.delay(attempt)
            attempt += 1
            self.reconnects += 1
            self._emit(SourceState.RECONNECTING,
                       f"{self.description}: {reason} — reconnecting (attempt {attempt}, in {delay:.1f} s)", attempt, delay)
            if self._stop.wait(delay):
                return None
            try:
                return self._open()
            except Exception as error:  # noqa: BLE001
                reason = one_line(error)
                logger.info("reconnecting to %s failed: %s", self.description, reason)

    def _fail(self, message: str) -> None:
        self._emit(SourceState.FAILED, message)
        if self._raise:
            raise SourceError(message)

    def _wait_for_next(self, next_due: float) -> float:
        """Wait until the next frame is due (files and folders play in real time)."""
        fps = self._pace_fps or self.fps or DEFAULT_PACE_FPS
        next_due += 1.0 / fps
        now = time.perf_counter()
        if next_due > now:
            self._stop.wait(next_due - now)
            return next_due
        return now if now - next_due > 1.0 else next_due  # far behind: do not race to catch up

    def _emit(self, state: SourceState, message: str, attempt: int = 0, retry_in_s: float = 0.0) -> None:
        if self._on_status is not None:
            self._on_status(SourceStatus(state, message, self._generation, attempt, retry_in_s))
