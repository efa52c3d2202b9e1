"""GUI test fixtures: a dangling-thread guard, isolated settings, galleries with the
fixture people enrolled, fake cameras, and a main-window factory.

Every test runs offscreen (QT_QPA_PLATFORM=offscreen, set in tests/conftest.py).
"""

from __future__ import annotations

import inspect
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, QThread

from faceapp.errors import SourceError


# --------------------------------------------------------------------------- guards
@pytest.fixture(autouse=True)
def dangling_qthreads(monkeypatch):
    """Fail any test that leaves a QThread running (napari's guard): every QThread
    started during the test is remembered with where it was started from."""
    started: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    original = QThread.start

    def start(self, *args, **kwargs):
        caller = inspect.stack()[1]
        started[self] = f"{caller.filename}:{caller.lineno}"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    yield
    dangling = []
    for thread, where in list(started.items()):
        try:
            if thread.isRunning():
                dangling.append(f"{thread.objectName() or 'QThread'} started at {where}")
        except RuntimeError:  # the C++ object is gone: not running
            continue
    if dangling:
        for thread in list(started):  # do not let them leak into the next test
            try:
                thread.quit()
                thread.wait(2000)
            except RuntimeError:
                pass
        pytest.fail("QThreads still running after the test: " + "; ".join(dangling))


@pytest.fixture(scope="session", autouse=True)
def isolated_qsettings(tmp_path_factory):
    """Any QSettings made without an explicit file goes to a temporary folder."""
    root = tmp_path_factory.mktemp("qsettings")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(root))
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, str(root / "system"))
    yield root


@pytest.fixture(scope="session", autouse=True)
def converted_liveness_networks(recognizer):
    """The liveness networks converted for LiteRT before any window opens: the recognition
    worker loads them on its first frame, and a first conversion (about 25 s on 2 cores
    with an empty model cache, as in CI) would otherwise eat the tests' waits."""
    from faceapp.vision.liveness import LivenessChecker

    LivenessChecker(recognizer.card.directory, device="cpu")


@pytest.fixture
def settings(tmp_path):
    from faceapp.gui.settings import AppSettings

    value = AppSettings.at(tmp_path / "settings.ini")
    value.snapshot_dir = tmp_path / "snapshots"
    # The fake cameras' still photos cannot turn their heads (test_enroll_challenge.py and
    # test_enroll_poses.py can).
    value.enroll_challenge = value.enroll_poses = False
    return value


# --------------------------------------------------------------------------- galleries
@pytest.fixture(scope="session")
def enrolled_templates(recognizer, fixtures_dir):
    """Templates of obama (two photos not used in the fixture video) and biden."""
    from faceapp.recognition.enrollment import samples_from_files

    photos = {
        "obama": [fixtures_dir / "obama" / "obama_2.jpg", fixtures_dir / "obama" / "obama_3.jpg"],
        "biden": [fixtures_dir / "biden" / "biden_1.jpg"],
    }
    model_id = recognizer.embedder.model_id
    return {name: [s.template(model_id) for s in samples_from_files(recognizer, paths)] for name, paths in photos.items()}


@pytest.fixture
def gallery(tmp_path):
    from faceapp.storage.gallery import Gallery

    with Gallery(tmp_path / "gallery.sqlite3") as value:
        yield value


@pytest.fixture
def gallery_jobs():
    """A gallery job runner (its thread is stopped after the test)."""
    from faceapp.gui.workers.jobs import JobRunner

    runner = JobRunner("test-gallery-jobs")
    yield runner
    assert runner.shutdown(10.0)


@pytest.fixture
def gallery_with(gallery, enrolled_templates):
    """Enroll the named fixture people: ``gallery_with("obama", "biden")``."""

    def enroll(*names: str):
        for name in names:
            gallery.add_person(name, enrolled_templates[name])
        return gallery

    return enroll


@pytest.fixture
def live_recognizer(recognizer, gallery):
    """A recognizer over the test's gallery, sharing the session's loaded models."""
    from faceapp.recognition.pipeline import Recognizer

    return Recognizer(recognizer.card, recognizer.detector, recognizer.embedder, None, gallery)


# --------------------------------------------------------------------------- fake cameras
@dataclass
class FakeCamera:
    """A live source made of frames, looping forever at ``fps``.

    After ``fail_after`` frames it fails once per open (raising, or yielding None with
    ``fail_with_none``); ``opens_failing`` further opens then raise SourceError, like a
    camera that is unplugged and plugged back in.
    """

    frames: list[np.ndarray]
    fps: float = 30.0
    fail_after: int | None = None
    fail_with_none: bool = False
    opens_failing: int = 0
    opens: int = 0
    open_times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, spec=None) -> Iterator[np.ndarray]:
        with self.lock:
            self.opens += 1
            self.open_times.append(time.monotonic())
            if 1 < self.opens <= 1 + self.opens_failing:
                raise SourceError("cannot open webcam 0 (is a camera connected?)")
        return self._frames(fail=self.fail_after is not None and self.opens == 1)

    def _frames(self, fail: bool) -> Iterator[np.ndarray]:
        index = 0
        while True:
            if fail and index == self.fail_after:
                if self.fail_with_none:
                    yield None
                raise SourceError("camera unplugged")
            time.sleep(1.0 / self.fps)
            yield self.frames[index % len(self.frames)]
            index += 1


def scene_frames(fixtures_dir: Path, photo: str, count: int = 12, transform: Callable | None = None) -> list[np.ndarray]:
    """``count`` 640x480 frames panning across one fixture photo."""
    from faceapp.media.fixture_video import Scene, render_frames

    frames = [frame for frame, _ in render_frames(fixtures_dir, (Scene(photo, (), count),))]
    return [transform(f) for f in frames] if transform else frames


@pytest.fixture(scope="session")
def biden_frames(fixtures_dir):
    # The first frame of this pan also shows part of a second face: leave it out.
    return scene_frames(fixtures_dir, "biden/biden_2.jpg", 13)[1:]


@pytest.fixture
def make_window(qtbot, live_recognizer, gallery, settings):
    """Build main windows (closed again, stopping their threads, after the test)."""
    from faceapp.gui.main_window import MainWindow
    from faceapp.gui.workers.capture import Backoff

    windows = []

    def make(opener=None, asker=None, backoff=None, **kwargs):
        extra = {"opener": opener} if opener is not None else {}
        backoff = backoff or Backoff(0.02, 2.0, 0.2)  # short waits between reconnections
        window = MainWindow(live_recognizer, gallery, settings, asker=asker or ScriptedAsker(), backoff=backoff, **extra, **kwargs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


class ScriptedAsker:
    """An :class:`~faceapp.gui.asker.Asker` answering from queues, recording questions.

    ``answers`` maps a method name to a list of answers given in order; a method with no
    answer left fails the test (an unexpected question).
    """

    def __init__(self, **answers) -> None:
        self.answers = {key: list(value) for key, value in answers.items()}
        self.asked: list[tuple[str, str]] = []

    def _answer(self, kind: str, text: str):
        self.asked.append((kind, text))
        queue = self.answers.get(kind)
        if not queue:
            raise AssertionError(f"unexpected question ({kind}): {text}")
        answer = queue.pop(0)
        return answer(text) if callable(answer) else answer

    def confirm(self, parent, title, text):
        return self._answer("confirm", text)

    def choose(self, parent, title, text, options):
        return self._answer("choose", text)

    def pick(self, parent, title, label, items):
        return self._answer("pick", label)

    def text(self, parent, title, label, default=""):
        return self._answer("text", label)

    def password(self, parent, title, label):
        return self._answer("password", label)

    def open_files(self, parent, title, filters):
        return self._answer("open_files", title)

    def open_file(self, parent, title, filters):
        return self._answer("open_file", title)

    def save_file(self, parent, title, default, filters):
        return self._answer("save_file", title)

    def folder(self, parent, title, start=""):
        return self._answer("folder", title)


@pytest.fixture
def asker_factory():
    return ScriptedAsker


@pytest.fixture
def camera_factory():
    """The :class:`FakeCamera` class, for tests to build cameras."""
    return FakeCamera


@pytest.fixture(scope="session")
def blurred_frames(fixtures_dir):
    """Biden, sharp enough to detect but too blurred to enroll."""
    import cv2

    return scene_frames(fixtures_dir, "biden/biden_2.jpg", 6, lambda f: cv2.GaussianBlur(f, (0, 0), 6))[1:]


@pytest.fixture(scope="session")
def tiny_frames(fixtures_dir):
    """Biden with a face of about 58 px: detected, but too small to enroll."""
    return scene_frames(fixtures_dir, "biden/biden_1.jpg", 6)


@pytest.fixture(scope="session")
def group_frame(fixtures_dir):
    return scene_frames(fixtures_dir, "groups/obama_and_biden_2.jpg", 2)[0]
