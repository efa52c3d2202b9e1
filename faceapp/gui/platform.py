"""Can the desktop app open a window here? Checked before Qt is started, without Qt.

On Linux, Qt's X11 platform plugin (xcb) needs system libraries that minimal systems
often lack (``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1``, ...); without
them Qt prints "Could not load the Qt platform plugin xcb" and aborts the process.
:func:`display_problem` finds that out first and returns one short message that names
the missing packages and the command that installs them, or says that there is no
display at all (then the command line is the way to use FaceApp).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SystemLibrary:
    """A shared library Qt's xcb plugin loads, and the packages that provide it."""

    soname: str
    debian: str
    fedora: str


#: What ``ldd`` lists for PySide6's libqxcb.so and libQt6XcbQpa.so, beyond the C runtime.
XCB_LIBRARIES = (
    SystemLibrary("libxcb.so.1", "libxcb1", "libxcb"),
    SystemLibrary("libX11.so.6", "libx11-6", "libX11"),
    SystemLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    SystemLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    SystemLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    SystemLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    SystemLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    SystemLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    SystemLibrary("libxcb-util.so.1", "libxcb-util1", "xcb-util"),
    SystemLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    SystemLibrary("libxcb-render.so.0", "libxcb-render0", "libxcb"),
    SystemLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    SystemLibrary("libxcb-shm.so.0", "libxcb-shm0", "libxcb"),
    SystemLibrary("libxcb-sync.so.1", "libxcb-sync1", "libxcb"),
    SystemLibrary("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb"),
    SystemLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
    SystemLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
    SystemLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    SystemLibrary("libGL.so.1", "libgl1", "libglvnd-glx"),
    SystemLibrary("libEGL.so.1", "libegl1", "libglvnd-egl"),
    SystemLibrary("libfontconfig.so.1", "libfontconfig1", "fontconfig"),
    SystemLibrary("libfreetype.so.6", "libfreetype6", "freetype"),
    SystemLibrary("libglib-2.0.so.0", "libglib2.0-0", "glib2"),
    SystemLibrary("libdbus-1.so.3", "libdbus-1-3", "dbus-libs"),
)

#: Qt platforms that need no screen and no X11 library.
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay", "minimalegl")


def missing_libraries(libraries: tuple[SystemLibrary, ...] = XCB_LIBRARIES) -> list[SystemLibrary]:
    """The libraries of ``libraries`` that the dynamic linker cannot load."""
    missing = []
    for library in libraries:
        try:
            ctypes.CDLL(library.soname)
        except OSError as error:
            logger.debug("cannot load %s: %s", library.soname, error)
            missing.append(library)
    return missing


def install_hint(missing: list[SystemLibrary]) -> str:
    """``sudo apt install ...`` (Debian, Ubuntu) and ``sudo dnf install ...`` (Fedora)."""
    debian = " ".join(dict.fromkeys(m.debian for m in missing))
    fedora = " ".join(dict.fromkeys(m.fedora for m in missing))
    return f"sudo apt install {debian}   (Fedora: sudo dnf install {fedora})"


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no window can be opened here (one line), or None when it can."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    requested = environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if requested in HEADLESS_PLATFORMS:
        return None
    x11, wayland = bool(environ.get("DISPLAY")), bool(environ.get("WAYLAND_DISPLAY"))
    if not x11 and not wayland:
        return ("there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop app cannot open "
                "its window; use the command line instead (faceapp --help), or run it under xvfb-run")
    if requested.startswith("wayland") or (wayland and not x11):
        return None  # Qt's Wayland plugin needs none of the X11 libraries
    missing = missing_libraries()
    if missing:
        names = ", ".join(m.debian for m in missing)
        return (f"the desktop app needs X11 libraries that are missing: {names}. Install them with: "
                f"{install_hint(missing)}")
    return None
