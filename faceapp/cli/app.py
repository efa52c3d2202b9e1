"""``faceapp`` with no command: start the desktop app with the common options."""

from __future__ import annotations

import argparse
import importlib.util

from faceapp.cli.common import gallery_path, pipeline_config
from faceapp.errors import FaceAppError


def launch_gui(args: argparse.Namespace) -> int:
    """Open the desktop app on ``--source`` (webcam 0 by default); its exit status."""
    if importlib.util.find_spec("PySide6") is None:
        raise FaceAppError("the desktop app needs PySide6, which is not installed (pip install PySide6-Essentials); "
                           "the commands work without it: see `faceapp --help`")
    from faceapp.gui.platform import display_problem

    problem = display_problem()  # before Qt starts: a missing X11 library would abort the process
    if problem:
        raise FaceAppError(problem)
    config = pipeline_config(args)  # bad options are refused before any window opens
    from faceapp.gui.app import run_app

    return run_app(config, gallery_path(args) if args.gallery else None, source=args.source, language=args.lang)
