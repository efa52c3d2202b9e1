"""The recognition worker: runs the core :class:`~faceapp.recognition.pipeline.Recognizer` on its
own thread.

It takes the newest captured frame from one :class:`LatestSlot` (older ones were already
dropped there), processes it, and puts a :class:`FramePacket` into a second slot for the
GUI, emitting ``packetReady`` with no payload; the GUI thread then takes the newest
packet. So a slow stage anywhere drops frames instead of queueing them, and what is on
screen is at most one processed frame behind the camera.

The worker also runs short jobs that need the models (enrolling from photos) between
frames, so one thread only ever uses the detector, which is not thread-safe.

Unless ``remember`` is off, every live frame also goes through the people memory
(:class:`~faceapp.recognition.memory.Memory`: sightings written on its own thread,
unknown visitors "Unknown #N"); ``appeared`` carries each
:class:`~faceapp.recognition.memory.Appearance` to the GUI (alerts).
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
    appeared = Signal(object)  # Appearance: someone appeared (for alerts)
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
        #: When True, tracks become sightings and unknown faces remembered visitors.
        self.remember = True
        #: When True, every face gets a passive liveness score (FaceResult.liveness).
        self.liveness_badge = False
        #: The source of the current generation (set by the controller with ``generation``).
        self.source = None
        self._memory = None
        self._memory_key: tuple | None = None
        self._liveness = None  # the LivenessChecker of enrollment, once loaded (False: unavailable)

    def _liveness_checker(self):
        """The passive anti-spoofing check of webcam enrollment (loaded on first use, on
        this thread); None when its networks cannot load (enrollment then goes on without
        it, and the log says why)."""
        if self._liveness is None:
            from faceapp.vision.liveness import LivenessChecker

            try:
                self._liveness = LivenessChecker(self._recognizer.card.directory, device=self._recognizer.embedder.choice.kind)
            except FaceAppError as error:
                logger.warning("the liveness check is unavailable (%s): enrollment samples are not checked", error)
                self._liveness = False
        return self._liveness or None

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
            self._close_memory()
            emit(self.finished)

    # -- people memory --------------------------------------------------------------------
    def _close_memory(self) -> None:
        if self._memory is not None:
            try:
                self._memory.close(10.0)
            except Exception:
                logger.exception("could not write the last sightings")
            self._memory = None

    def _remember(self, result: FrameResult, frame: CapturedFrame) -> FrameResult:
        gallery = getattr(self._recognizer, "gallery", None)
        if not self.remember or gallery is None or self.source is None:
            return result
        key = (frame.generation, id(gallery))
        if key != self._memory_key:
            from faceapp.recognition.memory import Memory
            from faceapp.recognition.visitors import VisitorConfig

            self._close_memory()
            self._memory_key = key
            try:
                card = self._recognizer.card
                self._memory = Memory(gallery, self._recognizer.embedder.model_id, card.embedding_dim, str(self.source),
                                      config=VisitorConfig.from_card(card.visitors), keep=not gallery.read_only,
                                      on_event=lambda event: emit(self.appeared, event))
            except FaceAppError as error:
                logger.warning("sightings are not kept for this source: %s", error)
        if self._memory is None:
            return result
        photo = None
        if self.source.kind == "folder" and frame.label:
            import os

            photo = os.path.abspath(os.path.join(self.source.value, frame.label))
        return self._memory.observe(result, frame.index, file=photo)

    def _process(self, frame: CapturedFrame) -> None:
        try:
            # A still photo, or an enrollment sample (kept as a template), is detected at full resolution.
            video = not self.enrollment and not (self.source is not None and self.source.kind == "folder")
            if self.enrollment or not self.tracking:  # each enrollment sample needs this very frame's embedding
                result = self._recognizer.process(frame.image, video=video)
            else:
                if frame.generation != self._live_generation:  # another source: new tracks
                    self._tracking = Tracking()
                    self._live_generation = frame.generation
                result = self._recognizer.process(frame.image, self._tracking, video=video)
            if not self.enrollment:  # enrollment samples are not sightings
                result = self._remember(result, frame)
                if self.liveness_badge and result.faces and (checker := self._liveness_checker()) is not None:
                    result = result.with_liveness(checker.check_many(frame.image, [f.detection for f in result.faces]))
            self._set_error(None)
        except FaceAppError as error:  # e.g. a gallery made with another model
            self._set_error(error)
            height, width = frame.image.shape[:2]
            result = FrameResult((), StageTimes(), (width, height))
        candidate = evaluate_frame(result, image=frame.image, liveness=self._liveness_checker()) if self.enrollment else None
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
