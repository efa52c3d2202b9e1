"""The capture worker on its QThread, without any window (the reader itself: tests/test_reader.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt, QThread

from faceapp.errors import SourceError
from faceapp.gui.workers.capture import CaptureWorker
from faceapp.media.latest import LatestSlot
from faceapp.media.reader import Backoff, SourceState


class Recorder:
    """Runs one CaptureWorker on a QThread and records its statuses."""

    def __init__(self, qtbot, opener, live=True, loop=False, pace_fps=None, backoff=None):
        backoff = backoff or Backoff(0.02, 2.0, 0.2)
        self.qtbot = qtbot
        self.slot = LatestSlot()
        self.statuses = []
        self.worker = CaptureWorker(opener, self.slot, description="test camera", live=live, loop=loop, backoff=backoff, pace_fps=pace_fps)
        self.worker.statusChanged.connect(self.statuses.append, Qt.ConnectionType.DirectConnection)
        self.thread = QThread()
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.start()

    def states(self):
        return [s.state for s in list(self.statuses)]

    def wait_for(self, predicate, timeout=5000):
        self.qtbot.waitUntil(predicate, timeout=timeout)

    def stop(self):
        self.worker.stop()
        self.thread.quit()
        assert self.thread.wait(1000)


def test_a_source_failing_mid_run_reconnects_with_backoff(qtbot, biden_frames, camera_factory):
    camera = camera_factory(biden_frames, fps=200, fail_after=5, opens_failing=2)
    recorder = Recorder(qtbot, camera.open, backoff=Backoff(0.05, 3.0, 1.0))  # waits of 0.05, 0.15, 0.45 s
    try:
        recorder.wait_for(lambda: camera.opens >= 4 and recorder.states()[-1] is SourceState.LIVE)
    finally:
        recorder.stop()
    states = recorder.states()
    assert states[:2] == [SourceState.OPENING, SourceState.LIVE]
    reconnecting = [s for s in recorder.statuses if s.state is SourceState.RECONNECTING]
    assert [s.attempt for s in reconnecting[:3]] == [1, 2, 3]
    delays = [s.retry_in_s for s in reconnecting[:3]]
    assert delays == sorted(delays) and delays[0] < delays[-1]
    assert "camera unplugged" in reconnecting[0].message and "reconnecting" in reconnecting[0].message
    gaps = np.diff(camera.open_times[1:4])  # between the reopening attempts
    assert gaps[0] >= 0.15 and gaps[1] >= 0.45 and gaps[1] > gaps[0] + 0.1  # the waits grow
    assert recorder.slot.take(1.0) is not None  # frames flow again


def test_a_source_yielding_none_reconnects(qtbot, biden_frames, camera_factory):
    camera = camera_factory(biden_frames, fps=200, fail_after=3, fail_with_none=True)
    recorder = Recorder(qtbot, camera.open)
    try:
        recorder.wait_for(lambda: SourceState.RECONNECTING in recorder.states() and camera.opens >= 2)
    finally:
        recorder.stop()


def test_a_source_that_cannot_open_fails_without_retrying(qtbot):
    calls = []

    def opener():
        calls.append(1)
        raise SourceError("cannot open webcam 0 (is a camera connected?)")

    recorder = Recorder(qtbot, opener)
    recorder.wait_for(lambda: not recorder.thread.isRunning())
    recorder.stop()
    assert recorder.states() == [SourceState.OPENING, SourceState.FAILED]
    assert recorder.statuses[-1].message == "cannot open webcam 0 (is a camera connected?)"
    assert len(calls) == 1


@pytest.mark.parametrize("loop", [False, True])
def test_a_finished_file_ends_or_loops(qtbot, biden_frames, loop):
    opens = []

    def opener():
        opens.append(1)
        return list(biden_frames[:3])

    recorder = Recorder(qtbot, opener, live=False, loop=loop, pace_fps=200)
    try:
        if loop:
            recorder.wait_for(lambda: len(opens) >= 3)
            assert recorder.thread.isRunning()
        else:
            recorder.wait_for(lambda: not recorder.thread.isRunning())
            assert recorder.states()[-1] is SourceState.ENDED
    finally:
        recorder.stop()


def test_stale_frames_are_dropped_not_queued(qtbot, biden_frames, camera_factory):
    camera = camera_factory(biden_frames, fps=200)
    recorder = Recorder(qtbot, camera.open)
    try:
        recorder.wait_for(lambda: recorder.slot.dropped >= 20)  # nobody takes: all but one dropped
        first = recorder.slot.take(1.0)
        time.sleep(0.1)
        second = recorder.slot.take(1.0)
    finally:
        recorder.stop()
    assert second.index > first.index + 1  # the frames in between were dropped
    assert second.captured_at > first.captured_at


def test_emitting_does_not_eat_references_to_true():
    """PySide6 6.12's emit() drops a reference to True per call on Python 3.11, which
    aborts the interpreter after a few thousand frames; faceapp.gui.qtcompat.emit
    compensates."""
    import sys

    from PySide6.QtCore import QObject, Signal

    from faceapp.gui.qtcompat import emit

    class Source(QObject):
        ping = Signal(object)

    source = Source()
    received = []
    source.ping.connect(received.append)
    before = sys.getrefcount(True)
    for value in range(2000):
        emit(source.ping, value)
    assert len(received) == 2000
    assert sys.getrefcount(True) >= before - 5
