"""Worker threads hand typed results and errors to the GUI thread (never text to parse)."""

from __future__ import annotations

import threading

import numpy as np

from faceapp.errors import ModelMismatchError
from faceapp.storage.crypto import PassphraseError
from faceapp.storage.gallery import NewTemplate

WAIT_MS = 20_000


def test_gallery_jobs_report_results_and_typed_errors(qtbot, gallery_jobs):
    finished, failed = {}, {}
    gallery_jobs.finished.connect(lambda job, result: finished.__setitem__(job, result))
    gallery_jobs.failed.connect(lambda job, error: failed.__setitem__(job, error))

    def refuse():
        raise PassphraseError("wrong passphrase for gallery g.sqlite3")

    good = gallery_jobs.submit(lambda: threading.current_thread() is not threading.main_thread())
    bad = gallery_jobs.submit(refuse)
    broken = gallery_jobs.submit(lambda: 1 / 0)
    qtbot.waitUntil(lambda: len(finished) + len(failed) == 3, timeout=WAIT_MS)
    assert finished == {good: True}  # it ran off the GUI thread
    assert isinstance(failed[bad], PassphraseError) and isinstance(failed[broken], ZeroDivisionError)
    assert len({good, bad, broken}) == 3 and not gallery_jobs.busy


def test_recognition_errors_arrive_as_exceptions(qtbot, live_recognizer, gallery, biden_frames, camera_factory):
    from faceapp.gui.workers.controller import LiveController
    from faceapp.media.sources import SourceSpec

    gallery.add_person("someone", [NewTemplate(np.ones(128, np.float32) / np.sqrt(128), "another-model")])
    controller = LiveController(live_recognizer, camera_factory(biden_frames).open)
    errors = []
    controller.errorChanged.connect(errors.append)
    failures = {}
    controller.jobFailed.connect(lambda job, error: failures.__setitem__(job, error))
    try:
        controller.open(SourceSpec.parse("0"))
        qtbot.waitUntil(lambda: any(isinstance(e, ModelMismatchError) for e in errors), timeout=WAIT_MS)

        def job(recognizer, cancelled):
            raise PassphraseError("wrong passphrase")

        job_id = controller.submit(job)
        qtbot.waitUntil(lambda: job_id in failures, timeout=WAIT_MS)
        assert isinstance(failures[job_id], PassphraseError)
    finally:
        assert controller.shutdown(2.0)
