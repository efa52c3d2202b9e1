"""Gallery work off the GUI thread: a :class:`JobRunner` runs callables one at a time on
its own :class:`~PySide6.QtCore.QThread` (removing people, wiping freed space, exports
and imports with scrypt, encrypting, re-keying) and reports each outcome with a signal.

Errors cross the thread as the exception object itself (``failed(job_id, error)``), so a
window decides with ``isinstance`` (a wrong passphrase, a gallery changed elsewhere),
never by reading the message. A :class:`~faceapp.errors.FaceAppError` is the user's to
fix (its one-line message is shown); anything else is logged with its traceback.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from faceapp.errors import FaceAppError
from faceapp.gui.qtcompat import emit

logger = logging.getLogger(__name__)

QUEUED = Qt.ConnectionType.QueuedConnection

_job_ids = itertools.count(1)
_job_ids_lock = threading.Lock()


def next_job_id() -> int:
    """A job id unique in this process (the recognition worker's jobs share the count)."""
    with _job_ids_lock:
        return next(_job_ids)


def describe(error: BaseException) -> str:
    """One line for the user: the message of a FaceAppError, else "unexpected error: ..."."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, FaceAppError) else f"unexpected error: {text}"


class _Worker(QObject):
    finished = Signal(int, object)
    failed = Signal(int, object)
    stopped = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.jobs: queue.Queue[tuple[int, Callable[[], Any]] | None] = queue.Queue()

    @Slot()
    def run(self) -> None:
        try:
            while (item := self.jobs.get()) is not None:
                job_id, work = item
                try:
                    result = work()
                except Exception as error:
                    if not isinstance(error, FaceAppError):
                        logger.exception("job %d failed", job_id)
                    emit(self.failed, job_id, error)
                else:
                    emit(self.finished, job_id, result)
        finally:
            emit(self.stopped)


class JobRunner(QObject):
    """Runs submitted callables in order on one worker thread (started on first use).

    ``finished(job_id, result)`` and ``failed(job_id, error)`` arrive on the thread the
    runner lives on (the GUI thread). Call :meth:`shutdown` before the owner goes away.
    """

    finished = Signal(int, object)
    failed = Signal(int, object)

    def __init__(self, name: str = "faceapp-gallery-jobs", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._name = name
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self.finished.connect(self._done)
        self.failed.connect(self._done)

    @property
    def busy(self) -> bool:
        """True while a submitted job has not reported yet."""
        with self._lock:
            return bool(self._pending)

    def submit(self, work: Callable[[], Any]) -> int:
        """Queue ``work()`` for the worker thread; returns its job id for the signals."""
        if self._worker is None:
            self._start()
        job_id = next_job_id()
        with self._lock:
            self._pending.add(job_id)
        self._worker.jobs.put((job_id, work))
        return job_id

    def _start(self) -> None:
        self._thread = QThread()
        self._thread.setObjectName(self._name)
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.finished.connect(self.finished, QUEUED)
        self._worker.failed.connect(self.failed, QUEUED)
        self._worker.stopped.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.start()

    def _done(self, job_id: int, _outcome: object) -> None:
        with self._lock:
            self._pending.discard(job_id)

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Finish the queued jobs (a gallery change is never cut in half) and stop the
        thread; True if it stopped within ``timeout_s``."""
        if self._worker is None or self._thread is None:
            return True
        self._worker.jobs.put(None)
        stopped = self._thread.wait(int(timeout_s * 1000))
        if not stopped:
            logger.error("thread %s is still busy after %.0f s", self._name, timeout_s)
        self._worker = None if stopped else self._worker
        self._thread = None if stopped else self._thread
        return stopped
