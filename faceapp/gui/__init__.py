"""The FaceApp desktop app (PySide6): a thin layer of views over the core.

Modules, one job each:

* :mod:`~faceapp.gui.app` -- ``run_app(config, gallery_path, source)``, what ``faceapp``
  with no command runs (through :mod:`faceapp.cli.app`).
* :mod:`~faceapp.gui.main_window` -- the live window; :mod:`~faceapp.gui.privacy_menu`
  its Privacy menu; :mod:`~faceapp.gui.video_view` paints a frame and its overlay.
* ``workers/``: :mod:`~faceapp.gui.workers.capture` (runs the Qt-free
  :class:`~faceapp.media.reader.Reader`), :mod:`~faceapp.gui.workers.recognition` (runs
  the pipeline with tracking), :mod:`~faceapp.gui.workers.jobs` (gallery changes off
  the GUI thread), :mod:`~faceapp.gui.workers.controller` (owns the threads; what
  views talk to). Results and typed errors cross threads as signals.
* ``dialogs/``: :mod:`~faceapp.gui.dialogs.enroll`, :mod:`~faceapp.gui.dialogs.photos`,
  :mod:`~faceapp.gui.dialogs.gallery`, :mod:`~faceapp.gui.dialogs.source_picker`, and
  :mod:`~faceapp.gui.dialogs.saving` (writing samples, asking when the face is known).
* :mod:`~faceapp.gui.asker` -- every question to the user, behind one injectable object;
  :mod:`~faceapp.gui.passphrase` -- unlocking and choosing passphrases.
* :mod:`~faceapp.gui.settings` -- settings kept between runs (QSettings).
* :mod:`~faceapp.gui.images`, :mod:`~faceapp.gui.qtcompat` -- numpy/Qt images; a PySide6 workaround;
  :mod:`~faceapp.gui.screenshots` -- the docs' screenshots, taken by the running app.

Nothing in :mod:`faceapp` outside this package imports Qt (import-linter checks it).
"""
