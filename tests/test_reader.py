"""The Qt-free capture loop (:mod:`faceapp.media.reader`) and the latest-frame slot:
reconnection with back-off, the stall timeout, giving up, ending and looping, as the CLI
and the desktop app both use them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from faceapp.errors import SourceError
from faceapp.media.latest import LatestSlot
from faceapp.media.reader import Backoff, Reader, SourceState, own_copy

FAST = Backoff(0.01, 2.0, 0.05)


def test_latest_slot_keeps_only_the_newest_item():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take() is None
    for value in range(5):
        slot.put(value)
    assert slot.take() == 4
    assert slot.dropped == 4
    assert slot.take() is None


def test_latest_slot_take_waits_for_a_producer():
    slot: LatestSlot[str] = LatestSlot()
    threading.Timer(0.05, slot.put, args=("frame",)).start()
    assert slot.take(timeout=2.0) == "frame"
    start = time.monotonic()
    assert slot.take(timeout=0.05) is None
    assert time.monotonic() - start < 1.0


def test_backoff_grows_and_is_capped():
    backoff = Backoff(0.5, 2.0, 3.0)
    assert [backoff.delay(i) for i in range(4)] == [0.5, 1.0, 2.0, 3.0]


def test_frames_are_copied_before_crossing_threads():
    image = np.zeros((10, 10, 3), np.uint8)
    copy = own_copy(image, 1280)
    image[:] = 255
    assert copy.max() == 0
    assert own_copy(np.zeros((2000, 1000, 3), np.uint8), 1000).shape == (1000, 500, 3)
    assert own_copy(np.zeros((8, 8), np.uint8), 100).shape == (8, 8, 3)



class StallingCamera:
    """A live source: ``frames_per_open`` frames, then its read blocks (a camera that
    stops answering) until released; every open is counted."""

    def __init__(self, frames_per_open: int = 3, fail_opens: int = 0) -> None:
        self.frames_per_open = frames_per_open
        self.fail_opens = fail_opens
        self.opens = 0
        self.release = threading.Event()

    def open(self):
        self.opens += 1
        if 1 < self.opens <= 1 + self.fail_opens:
            raise SourceError("cannot open webcam 0 (is a camera connected?)")
        return self._frames()

    def _frames(self):
        for index in range(self.frames_per_open):
            yield np.full((48, 64, 3), index, np.uint8)
        self.release.wait(30)  # blocks like a stalled VideoCapture.read


def test_a_stalled_live_source_is_reopened_after_the_timeout():
    camera = StallingCamera()
    statuses = []
    reader = Reader(camera.open, description="webcam 0", live=True, backoff=FAST, stall_timeout_s=0.2, on_status=statuses.append)
    start = time.monotonic()
    frames = []
    for frame in reader.frames():
        frames.append(frame)
        if len(frames) == 7:
            reader.stop()
    camera.release.set()
    assert camera.opens == 3 and reader.reconnects == 2
    assert [f.index for f in frames] == list(range(7))  # one running index across reopenings
    states = [s.state for s in statuses]
    assert states[0] is SourceState.OPENING and states.count(SourceState.RECONNECTING) == 2 and states[-1] is SourceState.STOPPED
    assert "no frame for 0.2 s" in next(s.message for s in statuses if s.state is SourceState.RECONNECTING)
    assert time.monotonic() - start < 10


def test_giving_up_after_max_reconnects_raises_one_line():
    camera = StallingCamera(frames_per_open=1, fail_opens=10)
    reader = Reader(camera.open, description="webcam 0", live=True, backoff=FAST, stall_timeout_s=0.1,
                    max_reconnects=2, raise_errors=True)
    with pytest.raises(SourceError, match=r"gave up after 2 reconnection attempt\(s\)") as info:
        list(reader.frames())
    camera.release.set()
    assert "\n" not in str(info.value) and camera.opens == 3


def test_a_source_that_cannot_be_opened_raises_or_reports():
    def broken():
        raise SourceError("cannot open stream rtsp://nowhere")

    with pytest.raises(SourceError, match="cannot open stream"):
        list(Reader(broken, description="rtsp://nowhere", live=True, raise_errors=True).frames())
    statuses = []
    assert list(Reader(broken, description="rtsp://nowhere", live=True, on_status=statuses.append).frames()) == []
    assert statuses[-1].state is SourceState.FAILED and statuses[-1].message == "cannot open stream rtsp://nowhere"


@pytest.mark.parametrize("loop", [False, True])
def test_a_file_ends_or_loops(loop):
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(4)]
    reader = Reader(lambda: iter(frames), description="clip.mp4", live=False, loop=loop)
    seen = []
    for frame in reader.frames():
        seen.append(int(frame.image[0, 0, 0]))
        if len(seen) == 10:
            reader.stop()
    assert seen == ([0, 1, 2, 3] * 3)[:10] if loop else seen == [0, 1, 2, 3]


def test_the_cli_recognises_through_the_reader_and_survives_a_stall(make_recognizer, enrolled_gallery, fixture_video):
    """``faceapp recognize`` on a live source: a camera that stalls after a few frames is
    reopened and recognition goes on (the CLI's own code path, run_recognition)."""
    from faceapp.media.sources import open_source
    from faceapp.recognition.run import run_recognition

    with open_source(str(fixture_video.path)) as source:
        real = [frame.image for frame in source][4:20]  # obama panning

    class Camera(StallingCamera):
        def _frames(self):
            yield from real[:5]
            self.release.wait(30)

    camera = Camera()
    try:
        summary = run_recognition(make_recognizer(enrolled_gallery), "0", max_frames=12, show_progress=False,
                                  opener=camera.open, stall_timeout_s=0.3, backoff=FAST)
    finally:
        camera.release.set()
    assert summary.frames == 12 and camera.opens == 3 and summary.reconnects == 2
    assert summary.names["obama"] >= 10
