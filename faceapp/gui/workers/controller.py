"""The live controller: owns the capture and recognition threads; views talk to it.

Threads (each a worker QObject moved to a QThread, stopped cooperatively with
``worker.stop(); thread.quit(); thread.wait()``, never ``terminate()``):

* one recognition thread for the controller's whole life;
* one capture thread per opened source; opening another source stops the old one
  (without waiting for it) and bumps a *generation* number so that its last frames and
  statuses are ignored.

Between them, and between recognition and the GUI, sit one-slot buffers
(:class:`~faceapp.media.latest.LatestSlot`): the latest frame wins. Every signal from a
worker reaches this object through a queued connection, on the GUI thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QThread, Signal

from faceapp.gui.qtcompat import emit
from faceapp.gui.workers.capture import CapturedFrame, CaptureWorker
from faceapp.gui.workers.jobs import JobRunner
from faceapp.gui.workers.recognition import FramePacket, Job, RecognitionWorker
from faceapp.media.latest import LatestSlot
from faceapp.media.reader import DEFAULT_STALL_TIMEOUT_S, Backoff, SourceState, SourceStatus
from faceapp.media.sources import SourceSpec, open_source
from faceapp.recognition.pipeline import Recognizer

logger = logging.getLogger(__name__)

#: Opens a source from its spec: faceapp.media.sources.open_source, or a fake in tests.
SourceOpener = Callable[[SourceSpec], Iterable]

QUEUED = Qt.ConnectionType.QueuedConnection


@dataclass
class _Running:
    thread: QThread
    worker: CaptureWorker | RecognitionWorker


class LiveController(QObject):
    """Runs recognition on a source. Call :meth:`start` once, then :meth:`open`; call
    :meth:`shutdown` before the owner goes away (the main window does, on close)."""

    packetReady = Signal(object)  # FramePacket, the newest one
    statusChanged = Signal(object)  # SourceStatus of the current source
    errorChanged = Signal(object)  # the FaceAppError stopping recognition, None when fine
    jobFinished = Signal(int, object)
    jobFailed = Signal(int, object)  # job id, the exception
    appeared = Signal(object)  # an Appearance (faceapp.recognition.memory), for alerts

    def __init__(
        self,
        recognizer: Recognizer,
        opener: SourceOpener = open_source,
        backoff: Backoff | None = None,
        pace_fps: float | None = None,
        parent: QObject | None = None,
        stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        super().__init__(parent)
        self._stall_timeout_s = stall_timeout_s
        self.recognizer = recognizer
        self._opener = opener
        self._backoff = backoff or Backoff()
        self._pace_fps = pace_fps
        self._frames: LatestSlot[CapturedFrame] = LatestSlot()
        self._packets: LatestSlot[FramePacket] = LatestSlot()
        self._recognition: _Running | None = None
        self._capture: _Running | None = None
        self._retiring: list[_Running] = []
        self._generation = 0
        self._paused = False
        self._loop = False
        self.spec: SourceSpec | None = None
        self.status = SourceStatus(SourceState.STOPPED, "no source")
        self.latest: FramePacket | None = None
        #: Gallery changes that may take long (wiping, scrypt) run here, off the GUI thread.
        self.gallery_jobs = JobRunner(parent=self)

    # -- lifetime -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the recognition thread (idempotent)."""
        if self._recognition is not None:
            return
        worker = RecognitionWorker(self.recognizer, self._frames, self._packets)
        worker.packetReady.connect(self._take_packet, QUEUED)
        worker.errorChanged.connect(self.errorChanged, QUEUED)
        worker.jobFinished.connect(self.jobFinished, QUEUED)
        worker.jobFailed.connect(self.jobFailed, QUEUED)
        worker.appeared.connect(self.appeared, QUEUED)
        self._recognition = self._start_thread(worker, "faceapp-recognition")

    def shutdown(self, timeout_s: float = 1.0, grace_s: float = 10.0) -> bool:
        """Stop every thread; True if all stopped within ``timeout_s`` (all together).

        A thread still busy then (a stream read blocking on the network, a photo being
        detected) is waited for up to ``grace_s`` more, with a warning, because a QThread
        destroyed while running would abort the process; it is never terminated.
        """
        deadline = time.monotonic() + timeout_s
        running = [r for r in (self._capture, self._recognition, *self._retiring) if r is not None]
        for item in running:
            item.worker.stop()
            item.thread.quit()
        stopped = True
        for item in running:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not item.thread.wait(remaining_ms):
                stopped = False
                logger.warning("thread %s did not stop within %.1f s; waiting for it", item.thread.objectName(), timeout_s)
                if not item.thread.wait(int(grace_s * 1000)):
                    logger.error("thread %s is still busy after %.1f s more", item.thread.objectName(), grace_s)
        self._capture = self._recognition = None
        self._retiring = [r for r in running if r.thread.isRunning()]
        return self.gallery_jobs.shutdown() and stopped

    def threads(self) -> list[QThread]:
        """Every thread this controller started that is still running."""
        items = [self._recognition, self._capture, *self._retiring]
        return [r.thread for r in items if r is not None and r.thread.isRunning()]

    # -- the source ------------------------------------------------------------------------
    def open(self, spec: SourceSpec, loop: bool | None = None) -> None:
        """Show ``spec`` from now on (the previous source is stopped)."""
        self.start()
        self.stop_source()
        if loop is not None:
            self._loop = loop
        self.spec = spec
        self.latest = None
        self._generation += 1
        self._recognition_worker().source = spec
        self._recognition_worker().generation = self._generation
        worker = CaptureWorker(
            lambda: self._opener(spec),
            self._frames,
            description=str(spec),
            live=spec.is_live,
            loop=self._loop,
            generation=self._generation,
            backoff=self._backoff,
            pace_fps=self._pace_fps,
            stall_timeout_s=self._stall_timeout_s,
        )
        worker.set_paused(self._paused)
        worker.statusChanged.connect(self._on_status, QUEUED)
        self._capture = self._start_thread(worker, f"faceapp-capture-{self._generation}")

    def stop_source(self) -> None:
        """Stop the current capture without waiting for its thread (it ends on its own)."""
        if self._capture is None:
            return
        self._capture.worker.stop()
        self._capture.thread.quit()
        self._retiring.append(self._capture)
        self._capture = None
        self._frames.clear()

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool) -> None:
        self._paused = bool(paused)
        if self._capture is not None:
            self._capture.worker.set_paused(self._paused)  # type: ignore[union-attr]

    @property
    def loop(self) -> bool:
        return self._loop

    def set_loop(self, loop: bool) -> None:
        self._loop = bool(loop)
        if self._capture is not None:
            self._capture.worker.set_loop(self._loop)  # type: ignore[union-attr]

    @property
    def tracking(self) -> bool:
        """Whether faces are followed across frames (vote-stable names)."""
        return self._recognition_worker().tracking

    def set_tracking(self, enabled: bool) -> None:
        self._recognition_worker().tracking = bool(enabled)

    @property
    def liveness_badge(self) -> bool:
        """Whether every face gets a passive liveness score (the view's "live" badge)."""
        return self._recognition_worker().liveness_badge

    def set_liveness_badge(self, enabled: bool) -> None:
        self._recognition_worker().liveness_badge = bool(enabled)

    def set_remember(self, enabled: bool) -> None:
        """Keep sightings and remember unknown visitors (from the next frame on)."""
        self._recognition_worker().remember = bool(enabled)

    # -- enrollment and jobs ---------------------------------------------------------------
    def set_enrollment(self, enabled: bool) -> None:
        """Ask the recognition worker to judge every frame as an enrollment sample."""
        self._recognition_worker().enrollment = bool(enabled)

    def submit(self, job: Job) -> int:
        """Run ``job`` on the recognition thread; watch ``jobFinished``/``jobFailed``."""
        return self._recognition_worker().submit(job)

    # -- internals ---------------------------------------------------------------------------
    def _recognition_worker(self) -> RecognitionWorker:
        """The running recognition worker (started on first use)."""
        self.start()
        if self._recognition is None:
            raise RuntimeError("the controller has been shut down")
        return self._recognition.worker  # type: ignore[return-value]

    def _start_thread(self, worker: CaptureWorker | RecognitionWorker, name: str) -> _Running:
        thread = QThread()
        thread.setObjectName(name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._prune, QUEUED)
        thread.start()
        logger.debug("started thread %s", name)
        return _Running(thread, worker)

    def _prune(self) -> None:
        self._retiring = [r for r in self._retiring if r.thread.isRunning()]

    def _take_packet(self) -> None:
        packet = self._packets.take()
        if packet is None or packet.generation != self._generation:
            return
        self.latest = packet
        emit(self.packetReady, packet)

    def _on_status(self, status: SourceStatus) -> None:
        if status.generation != self._generation:
            return
        self.status = status
        emit(self.statusChanged, status)
