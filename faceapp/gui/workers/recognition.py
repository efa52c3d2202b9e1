"""The recognition worker: runs the core :class:`~faceapp.recognition.pipeline.Recognizer` on its
own thread.

It takes the newest captured frame from one :class:`LatestSlot` (older ones were already
dropped there), processes it, and puts a :class:`FramePacket` into a second slot for the
GUI, emitting ``packetReady`` with no payload; the GUI thread then takes the newest
packet. So a slow stage anywhere drops frames instead of queueing them, and what is on
screen is at most one processed frame behind the camera.

The worker also runs short jobs that need the models (enrolling from photos) between
frames, so one thread only ever uses the detector, which is not thread-safe.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from faceapp.errors import FaceAppError
from faceapp.gui.images import qimage_from_bgr
from faceapp.gui.qtcompat import emit
from faceapp.gui.workers.capture import CapturedFrame
from faceapp.gui.workers.jobs import next_job_id
from faceapp.media.latest import LatestSlot
from faceapp.recognition.enrollment import Candidate, evaluate_frame
from faceapp.recognition.live import Tracking
from faceapp.recognition.pipeline import Recognizer
from faceapp.types import FrameResult, StageTimes

logger = logging.getLogger(__name__)

#: A job: called on the worker thread with the recognizer and a "was I cancelled?" test.
Job = Callable[[Recognizer, Callable[[], bool]], Any]


class JobCancelled(Exception):
    """Raised by a job that noticed the worker is stopping."""


@dataclass(frozen=True)
class FramePacket:
    """One processed frame for the views.

    ``image``: the BGR frame (owned by the packet; nobody mutates it); ``qimage``: its
    own RGB copy for painting; ``fps``: processed frames per second (smoothed);
    ``latency_ms``: from capture to result; ``dropped``: frames dropped so far because
    recognition was busy; ``candidate``: the enrollment judgement, when asked for.
    """

    image: np.ndarray
    qimage: QImage
    result: FrameResult
    index: int
    generation: int
    fps: float
    latency_ms: float
    dropped: int
    candidate: Candidate | None = None
    label: str = ""


class RecognitionWorker(QObject):
    """Processes the latest frame, forever, until :meth:`stop` is called."""

    packetReady = Signal()
    errorChanged = Signal(object)  # the FaceAppError stopping recognition, or None once it works again
    jobFinished = Signal(int, object)
    jobFailed = Signal(int, object)  # job id, the exception (typed: see faceapp.gui.workers.jobs)
    finished = Signal()

    def __init__(self, recognizer: Recognizer, frames: LatestSlot[CapturedFrame], packets: LatestSlot[FramePacket], poll_s: float = 0.05) -> None:
        super().__init__()
        self._recognizer = recognizer
        # Live view: tracked faces with vote-stable names, embedded only when needed.
        self._tracking = Tracking()
        self._live_generation: int | None = None
        self._frames = frames
        self._packets = packets
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._jobs: queue.Queue[tuple[int, Job]] = queue.Queue()
        self._error: tuple | None = None
        self._fps = 0.0
        self._last_done: float | None = None
        #: Frames of other generations (a replaced source) are ignored; set by the controller.
        self.generation = 0
        #: When True, every packet carries an enrollment :class:`Candidate`.
        self.enrollment = False
        #: When False, every face of every frame is recognised on its own (no tracking).
        self.tracking = True

    # -- control, from any thread ---------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def is_stopping(self) -> bool:
        return self._stop.is_set()

    def submit(self, job: Job) -> int:
        """Queue ``job`` to run on the worker thread; returns its id for the signals."""
        job_id = next_job_id()
        self._jobs.put((job_id, job))
        return job_id

    # -- the loop -----------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self._run_jobs()
                frame = self._frames.take(self._poll_s)
                if frame is None or frame.generation != self.generation:
                    continue
                self._process(frame)
        except Exception:
            logger.exception("the recognition worker stopped")
            self._set_error(FaceAppError("recognition stopped after an internal error; see the log"))
        finally:
            emit(self.finished)

    def _process(self, frame: CapturedFrame) -> None:
        try:
            if self.enrollment or not self.tracking:  # each enrollment sample needs this very frame's embedding
                result = self._recognizer.process(frame.image)
            else:
                if frame.generation != self._live_generation:  # another source: new tracks
                    self._tracking = Tracking()
                    self._live_generation = frame.generation
                result = self._recognizer.process(frame.image, self._tracking)
            self._set_error(None)
        except FaceAppError as error:  # e.g. a gallery made with another model
            self._set_error(error)
            height, width = frame.image.shape[:2]
            result = FrameResult((), StageTimes(), (width, height))
        candidate = evaluate_frame(result) if self.enrollment else None
        now = time.perf_counter()
        if self._last_done is not None:
            rate = 1.0 / max(now - self._last_done, 1e-6)
            self._fps = rate if self._fps == 0.0 else 0.8 * self._fps + 0.2 * rate
        self._last_done = now
        packet = FramePacket(
            image=frame.image,
            qimage=qimage_from_bgr(frame.image),
            result=result,
            index=frame.index,
            generation=frame.generation,
            fps=self._fps,
            latency_ms=(now - frame.captured_at) * 1e3,
            dropped=self._frames.dropped,
            candidate=candidate,
            label=frame.label,
        )
        self._packets.put(packet)
        emit(self.packetReady)

    def _run_jobs(self) -> None:
        while not self._stop.is_set():
            try:
                job_id, job = self._jobs.get_nowait()
            except queue.Empty:
                return
            try:
                result = job(self._recognizer, self._stop.is_set)
            except JobCancelled:
                return
            except FaceAppError as error:
                emit(self.jobFailed, job_id, error)
            except Exception as error:
                logger.exception("job %d failed", job_id)
                emit(self.jobFailed, job_id, error)
            else:
                emit(self.jobFinished, job_id, result)

    def _set_error(self, error: FaceAppError | None) -> None:
        """Report a new error (or None once recognition works again), once per change."""
        key = None if error is None else (type(error), str(error))
        if key != self._error:
            self._error = key
            if error is not None:
                logger.warning("recognition: %s", error)
            emit(self.errorChanged, error)
