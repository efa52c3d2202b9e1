"""The FaceApp desktop app (PySide6): a thin layer of views over the core.

Modules, one job each:

* :mod:`~faceapp.media.latest` -- the one-slot "latest wins" buffer between threads (no Qt).
* :mod:`~faceapp.recognition.sampling` -- judging a live frame as an enrollment sample (no Qt).
* :mod:`~faceapp.gui.workers.capture` / :mod:`~faceapp.gui.workers.recognition` -- the two workers.
* :mod:`~faceapp.gui.workers.controller` -- owns the worker threads; what views talk to.
* :mod:`~faceapp.gui.video_view` -- paints a frame and its recognition overlay.
* :mod:`~faceapp.gui.main_window`, :mod:`~faceapp.gui.dialogs.enroll`,
  :mod:`~faceapp.gui.dialogs.photos`, :mod:`~faceapp.gui.dialogs.gallery`,
  :mod:`~faceapp.gui.dialogs.source_picker` -- the windows.
* :mod:`~faceapp.gui.dialogs.saving` -- writing samples to the gallery, asking when the face is known.
* :mod:`~faceapp.gui.asker` -- every question to the user, behind one injectable object.
* :mod:`~faceapp.gui.settings` -- settings kept between runs (QSettings).
* :mod:`~faceapp.gui.images`, :mod:`~faceapp.gui.qtcompat` -- numpy/Qt images; a PySide6 workaround.
* :mod:`~faceapp.gui.app` -- ``run_app(args)``, what ``faceapp`` with no command runs;
  :mod:`~faceapp.gui.screenshots` -- the docs' screenshots, taken by the running app.

Nothing in :mod:`faceapp` outside this package imports Qt.
"""
