"""Working around a reference-count bug in PySide6's ``SignalInstance.emit``.

PySide6 6.12 returns the result of ``emit()`` (``True``) without a new reference. On
Python 3.11, where ``True`` is not immortal, every emit from Python code therefore
takes one reference away from ``True``, and after a few thousand emits (a minute of
live video) the interpreter aborts with "Fatal Python error: bool_dealloc". Python
3.12+ (immortal ``True``) and other PySide releases (6.11.3 checked) are unaffected;
``pyproject.toml`` excludes 6.12.0, and this guard protects installs that have it anyway.

:func:`emit` emits and, only when the bug was detected at import, gives the returned
object the reference that ``emit`` failed to give. Every emit in :mod:`faceapp.gui`
goes through it.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

logger = logging.getLogger(__name__)

_PROBES = 8


class _Probe(QObject):
    ping = Signal()


def _incref(value: object, times: int = 1) -> None:
    for _ in range(times):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(value))


def _detect() -> bool:
    """True if ``emit()`` hands back a borrowed reference (and repair the probe's damage)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost >= _PROBES:
        _incref(True, lost)
        logger.debug("PySide6 emit() leaks a reference to its result: compensating")
        return True
    return False


EMIT_RETURNS_BORROWED = _detect()


def emit(signal: SignalInstance, *args: object) -> None:
    """``signal.emit(*args)``, safe from the reference bug described above."""
    result = signal.emit(*args)
    if EMIT_RETURNS_BORROWED and result is not None:
        _incref(result)
