"""The FaceApp desktop app (PySide6): a thin layer of views over the core.

Modules, one job each:

* :mod:`~faceapp.gui.latest` -- the one-slot "latest wins" buffer between threads (no Qt).
* :mod:`~faceapp.gui.sampling` -- judging a live frame as an enrollment sample (no Qt).
* :mod:`~faceapp.gui.capture` / :mod:`~faceapp.gui.recognition` -- the two workers.
* :mod:`~faceapp.gui.controller` -- owns the worker threads; what views talk to.
* :mod:`~faceapp.gui.main_window`, :mod:`~faceapp.gui.enroll_dialog`,
  :mod:`~faceapp.gui.photos_dialog`, :mod:`~faceapp.gui.gallery_dialog` -- the windows.
* :mod:`~faceapp.gui.app` -- ``run_app(args)``, what ``faceapp`` with no command runs.

Nothing in :mod:`faceapp` outside this package imports Qt.
"""
