"""The capture worker: runs a :class:`~faceapp.media.reader.Reader` on its own thread.

The worker object is moved to a :class:`~PySide6.QtCore.QThread`; it hands each frame,
as its own copy, to a :class:`~faceapp.media.latest.LatestSlot` (if recognition has not
taken the previous frame yet, that stale frame is dropped) and re-emits the reader's
statuses as a signal. Everything else (stall timeout, reconnecting with back-off, loop,
pause, pacing files in real time) is the reader's, shared with ``faceapp recognize``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from faceapp.gui.qtcompat import emit
from faceapp.media.latest import LatestSlot
from faceapp.media.reader import DEFAULT_STALL_TIMEOUT_S, Backoff, Opener, Reader, SourceState, SourceStatus, one_line

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_STALL_TIMEOUT_S", "Backoff", "CaptureWorker", "CapturedFrame", "SourceState", "SourceStatus"]


@dataclass(frozen=True)
class CapturedFrame:
    """One frame handed from capture to recognition. ``image`` is the capture's own copy
    (BGR uint8 ``(H, W, 3)``), never touched again by the capture thread."""

    image: np.ndarray
    index: int
    generation: int
    captured_at: float  # time.perf_counter()
    label: str = ""


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
        self._frames = frames
        self._generation = generation
        self._description = description
        self.reader = Reader(
            opener, description=description, live=live, loop=loop, backoff=backoff, pace=True, pace_fps=pace_fps,
            max_side=max_side, stall_timeout_s=stall_timeout_s, on_status=lambda status: emit(self.statusChanged, status),
            generation=generation,
        )

    # -- control, from any thread ---------------------------------------------------
    def stop(self) -> None:
        self.reader.stop()

    def set_paused(self, paused: bool) -> None:
        self.reader.set_paused(paused)

    def set_loop(self, loop: bool) -> None:
        self.reader.set_loop(loop)

    # -- the loop, on the worker's thread --------------------------------------------
    @Slot()
    def run(self) -> None:
        """Capture until stopped, failed or ended; always emits ``finished``."""
        try:
            for frame in self.reader.frames():
                self._frames.put(CapturedFrame(frame.image, frame.index, self._generation, time.perf_counter(), frame.label))
        except Exception as error:  # never let a source take the app down
            logger.exception("capture of %s stopped", self._description)
            emit(self.statusChanged, SourceStatus(SourceState.FAILED, f"{self._description}: {one_line(error)}", self._generation))
        finally:
            emit(self.finished)
