"""The ``faceapp`` command line: the parser and the entry point.

Each command group lives in its own module (:mod:`~faceapp.cli.people`,
:mod:`~faceapp.cli.recognize`, :mod:`~faceapp.cli.gallery`, :mod:`~faceapp.cli.bench`,
:mod:`~faceapp.cli.evaluate`, :mod:`~faceapp.cli.train`), registered here; with no
command, :mod:`~faceapp.cli.app` opens the desktop app. Every command reuses the core.
User errors (a bad file, an unknown name, a broken gallery or model) print one line on
stderr and exit with status 1, never a traceback; the gallery is left as it was.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence

from faceapp import __version__
from faceapp.cli import bench, desktop, evaluate, gallery, memory, model, people, recognize, train
from faceapp.cli.common import common_options
from faceapp.errors import FaceAppError
from faceapp.files import display_name, os_error_line

logger = logging.getLogger("faceapp")

EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    common = common_options(suppress_defaults=True)
    parser = argparse.ArgumentParser(
        prog="faceapp",
        description="Real-time face recognition: enroll people, then name them in photos, videos and live cameras. "
        "With no command, opens the desktop app.",
        parents=[common_options(suppress_defaults=False)],
    )
    parser.add_argument("--version", action="version", version=f"faceapp {__version__}")
    parser.add_argument("--source", metavar="SRC", help="with no command: open the desktop app on this source")
    parser.add_argument("--lang", metavar="LOCALE", help="with no command: the app's language, e.g. en or zh_CN (default: the system's)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (people, recognize, memory, bench, train, evaluate, model, gallery, desktop):
        group.register(commands, common)
    return parser


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # its errors are reported by FaceApp itself
    os.environ.setdefault("ORT_LOG_LEVEL", "3")


def _printable_streams() -> None:
    """Never crash on printing a name or path the terminal cannot show (a file name with
    a byte that is not UTF-8): such characters are escaped instead."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a detached or closed stream: leave it as it is
                pass


def _one_line(text: str) -> str:
    """An error as one printable line: whitespace runs become one space, other control
    characters (an escape sequence hidden in a file name) are shown escaped."""
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):  # stderr closed: the exit status still tells
        pass


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    _printable_streams()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        if args.command is None:
            from faceapp.cli.app import launch_gui

            return launch_gui(args)
        if sys.stdout is None:  # started with stdout closed: what it printed would be lost
            _say("faceapp: error: standard output is closed; nothing could be printed")
            return EXIT_USER_ERROR
        return args.func(args)
    except FaceAppError as error:
        _say(_one_line(f"faceapp: error: {error}"))
        return EXIT_USER_ERROR
    except OSError as error:  # a path the user named: too long, read-only, full, missing...
        where = f"{display_name(error.filename)}: " if error.filename else ""
        if error.errno == errno.EPIPE or (sys.stdout is None or getattr(sys.stdout, "closed", False)):
            _say("faceapp: error: standard output is closed or a broken pipe")
            return EXIT_USER_ERROR
        _say(_one_line(f"faceapp: error: {where}{os_error_line(error)}"))
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _say("faceapp: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
