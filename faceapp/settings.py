"""Core settings in a small JSON file, loaded with full validation (no Qt).

The desktop app keeps its window settings in QSettings (:mod:`faceapp.gui.settings`);
this file holds the privacy and reliability choices the core needs, so the CLI and the
GUI read the same values::

    {"version": 1, "blur": "none" | "unknown" | "all", "use_keyring": bool,
     "camera_timeout_s": number in [0.5, 120]}

Loading never trusts the file: it is size-capped, must be UTF-8 JSON with an object at
the top, every known key is type- and range-checked (SettingsError, one line, naming the
key), and unknown keys are ignored with a warning (a newer FaceApp may add some).
A missing file gives the defaults. Saving is atomic (temp file + rename).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from faceapp.errors import FaceAppError

__all__ = ["MAX_SETTINGS_BYTES", "Settings", "SettingsError", "default_settings_path", "load_settings", "save_settings"]

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
MAX_SETTINGS_BYTES = 64 * 1024
SETTINGS_ENV = "FACEAPP_CORE_SETTINGS"
BLUR_CHOICES = ("none", "unknown", "all")


class SettingsError(FaceAppError):
    """The settings file is unreadable or holds an invalid value."""


@dataclass(frozen=True)
class Settings:
    """``blur``: faces blurred in recordings and snapshots. ``use_keyring``: remember the
    gallery passphrase in the OS keyring. ``camera_timeout_s``: a live source that gives
    no frame for this long is reported as stalled."""

    blur: str = "none"
    use_keyring: bool = False
    camera_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        _validate(asdict(self), "settings")

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _validate(data: dict[str, Any], where: str) -> None:
    blur = data.get("blur", "none")
    if not isinstance(blur, str) or blur not in BLUR_CHOICES:
        raise SettingsError(f"{where}: blur must be one of {', '.join(BLUR_CHOICES)}, not {blur!r:.60}")
    if not isinstance(data.get("use_keyring", False), bool):
        raise SettingsError(f"{where}: use_keyring must be true or false")
    timeout = data.get("camera_timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
        raise SettingsError(f"{where}: camera_timeout_s must be a number")
    if not 0.5 <= timeout <= 120:
        raise SettingsError(f"{where}: camera_timeout_s must be between 0.5 and 120 seconds (got {timeout})")


def default_settings_path() -> Path:
    """``$FACEAPP_CORE_SETTINGS``, else ``settings.json`` in the user config directory."""
    value = os.environ.get(SETTINGS_ENV)
    if value:
        return Path(value).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("faceapp")) / "settings.json"


def parse_settings(data: bytes, where: str = "settings") -> Settings:
    """Settings from the bytes of a settings file (SettingsError if invalid)."""
    if len(data) > MAX_SETTINGS_BYTES:
        raise SettingsError(f"{where}: file too large for a settings file ({len(data)} bytes)")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SettingsError(f"{where}: not a valid JSON settings file ({' '.join(str(e).split())[:80]})") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{where}: a settings file must hold a JSON object")
    version = value.get("version", SETTINGS_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SettingsError(f"{where}: version must be a positive integer")
    if version > SETTINGS_VERSION:
        log.warning("%s: written by a newer FaceApp (version %d); reading what this version knows", where, version)
    known = {"blur", "use_keyring", "camera_timeout_s"}
    unknown = sorted(str(k)[:40] for k in value if k not in known | {"version"})
    if unknown:
        log.warning("%s: ignoring unknown setting(s): %s", where, ", ".join(unknown[:10]))
    fields = {k: value[k] for k in known if k in value}
    _validate(fields, where)
    if "camera_timeout_s" in fields:
        fields["camera_timeout_s"] = float(fields["camera_timeout_s"])
    return Settings(**fields)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """The settings in ``path`` (default: :func:`default_settings_path`); defaults if the
    file does not exist; SettingsError if it cannot be read or is invalid."""
    p = Path(os.fspath(path)) if path is not None else default_settings_path()
    try:
        with p.open("rb") as f:
            data = f.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        return Settings()
    except OSError as e:
        raise SettingsError(f"{p}: cannot read the settings ({e.strerror or e})") from None
    return parse_settings(data, str(p))


def save_settings(settings: Settings, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``settings`` atomically; returns the path written."""
    p = Path(os.fspath(path)) if path is not None else default_settings_path()
    text = json.dumps({"version": SETTINGS_VERSION, **asdict(settings)}, indent=1) + "\n"
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise SettingsError(f"{p}: cannot write the settings ({e.strerror or e})") from None
    return p
