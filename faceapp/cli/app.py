"""Starting the desktop app from ``faceapp`` with no command."""

from __future__ import annotations

import sys


def launch_gui(args) -> int:
    try:
        from faceapp.gui.app import run_app
    except ImportError:
        print("faceapp: the desktop app is not part of this build yet; see `faceapp --help` for the commands", file=sys.stderr)
        return 2
    return run_app(args)
