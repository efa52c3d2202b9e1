"""The desktop app's entry point (``faceapp`` with no command, through :mod:`faceapp.cli.app`).

:func:`run_app` loads the gallery and the models (one-line errors, no traceback, if they
cannot be), opens the main window on the source (webcam 0 by default) and runs the Qt
event loop. Closing the window stops every worker thread.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys

from faceapp.errors import FaceAppError
from faceapp.recognition.pipeline import PipelineConfig, Recognizer
from faceapp.vision.detection import DetectorConfig

logger = logging.getLogger(__name__)

SCREENSHOTS_ENV = "FACEAPP_SCREENSHOTS"  # a folder: take the docs' screenshots, then quit


def _fail(app, message: str) -> int:
    """Say what went wrong in one line (stderr, and a message box when there is a screen)."""
    print(f"faceapp: error: {message}", file=sys.stderr)
    if app.platformName() not in ("offscreen", "minimal"):
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "FaceApp", message)
    return 1


def run_app(config: PipelineConfig | None = None, gallery_path: str | os.PathLike | None = None,
            source: str | None = None, asker=None, language: str | None = None) -> int:
    """Run the desktop app until its window closes; returns the exit status.

    ``config``: the pipeline (built by the one builder, :meth:`Recognizer.create`);
    ``gallery_path``: given explicitly, else ``$FACEAPP_GALLERY``, else the one chosen in
    the settings, else the default; ``source``: as for ``--source`` (default: the webcam
    of the settings); ``language``: a locale name ("zh_CN"), else the settings', else the
    system's.

    An encrypted gallery is unlocked with ``$FACEAPP_PASSPHRASE``, the keyring, or by
    asking (``asker``: a :class:`~faceapp.gui.asker.Asker`, Qt dialogs by default); a
    cancelled question quits with one line and status 1."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from faceapp.gui.asker import QtAsker
    from faceapp.gui.i18n import install_translators
    from faceapp.gui.icons import app_icon
    from faceapp.gui.main_window import MainWindow
    from faceapp.gui.passphrase import open_gallery
    from faceapp.gui.settings import APPLICATION, ORGANISATION, AppSettings
    from faceapp.paths import default_gallery_path

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "faceapp"])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("FaceApp")
    app.setDesktopFileName("faceapp")
    app.setWindowIcon(app_icon())
    settings = AppSettings.open()
    install_translators(app, language or settings.language)
    asker = asker or QtAsker()
    config = config or PipelineConfig()
    if settings.min_face_size is not None and config.detector.min_face_size == DetectorConfig().min_face_size:
        config = dataclasses.replace(config, detector=dataclasses.replace(config.detector, min_face_size=settings.min_face_size))
    path = gallery_path or (os.environ.get("FACEAPP_GALLERY") and default_gallery_path()) or settings.gallery_path or default_gallery_path()
    try:
        gallery = open_gallery(path, asker)
    except FaceAppError as error:
        return _fail(app, str(error))
    if gallery is None:
        print(f"faceapp: cancelled: no passphrase given for the encrypted gallery {path}", file=sys.stderr)
        return 1
    try:
        recognizer = Recognizer.create(config, gallery)
        if config.threshold is None and settings.decision is not None:
            try:
                recognizer.decision = settings.decision
            except FaceAppError:
                logger.warning("ignoring the unreadable remembered decision %r", settings.decision)
    except FaceAppError as error:
        gallery.close()
        return _fail(app, str(error))

    window = MainWindow(recognizer, gallery, settings, asker=asker)
    app.aboutToQuit.connect(window.shutdown)
    window.show()
    window.open_source_text(source)

    # Ctrl+C in the terminal closes the window (Python handles signals between Qt events).
    previous_handler = signal.signal(signal.SIGINT, lambda *_: window.close())
    ticker = QTimer()
    ticker.timeout.connect(lambda: None)
    ticker.start(250)

    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        from faceapp.gui.screenshots import take_screenshots

        take_screenshots(window, folder)
    try:
        return app.exec()
    finally:
        ticker.stop()
        signal.signal(signal.SIGINT, previous_handler)
        window.shutdown()
        window.gallery.close()  # the window may have reopened it
        gallery.close()
