"""Settings that persist between runs, through QSettings.

The app uses ``QSettings("FaceApp", "faceapp")`` (the platform's usual place), or an INI
file named by ``$FACEAPP_SETTINGS``; tests give :class:`AppSettings` a QSettings on a
temporary INI file, so the real user's settings are never touched.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

logger = logging.getLogger(__name__)

ORGANISATION = "FaceApp"
APPLICATION = "faceapp"
SETTINGS_ENV = "FACEAPP_SETTINGS"


class AppSettings:
    """Typed access to the app's settings; every setter writes through at once."""

    def __init__(self, store: QSettings) -> None:
        self._store = store

    @classmethod
    def open(cls) -> AppSettings:
        """``$FACEAPP_SETTINGS`` (an INI file) if set, else the platform's settings."""
        path = os.environ.get(SETTINGS_ENV)
        if path:
            return cls.at(path)
        return cls(QSettings(ORGANISATION, APPLICATION))

    @classmethod
    def at(cls, path: str | os.PathLike) -> AppSettings:
        """Settings kept in the INI file ``path``."""
        return cls(QSettings(str(Path(path)), QSettings.Format.IniFormat))

    @property
    def location(self) -> str:
        return self._store.fileName()

    def sync(self) -> None:
        self._store.sync()

    # -- values --------------------------------------------------------------------------
    def _get(self, key: str, kind: type, default):
        value = self._store.value(key, None)
        if value is None:
            return default
        try:
            if kind is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            logger.warning("ignoring the unreadable setting %s=%r", key, value)
            return default

    def _set(self, key: str, value) -> None:
        if value is None:
            self._store.remove(key)
        else:
            self._store.setValue(key, value)
        self._store.sync()

    @property
    def decision(self) -> str | None:
        """The decision rule the user chose last: a preset name or a fixed threshold as
        text (None: the model card's default preset). A threshold remembered by an
        older FaceApp (``recognition/threshold``) is a fixed one."""
        rule = self._get("recognition/decision", str, None)
        if rule is None and (old := self._get("recognition/threshold", float, None)) is not None:
            return f"{old:g}"
        return rule

    @decision.setter
    def decision(self, value: str | None) -> None:
        self._store.remove("recognition/threshold")
        self._set("recognition/decision", value)

    @property
    def source(self) -> str | None:
        """The last source opened (its text, as for ``--source``)."""
        return self._get("source/last", str, None)

    @source.setter
    def source(self, value: str | None) -> None:
        self._set("source/last", value)

    @property
    def loop_video(self) -> bool:
        return self._get("source/loop", bool, True)

    @loop_video.setter
    def loop_video(self, value: bool) -> None:
        self._set("source/loop", bool(value))

    @property
    def snapshot_dir(self) -> Path:
        """Where snapshots go (default: the user's pictures folder)."""
        text = self._get("snapshots/folder", str, None)
        if text:
            return Path(text)
        import platformdirs

        return Path(platformdirs.user_pictures_dir())

    @snapshot_dir.setter
    def snapshot_dir(self, value: str | os.PathLike | None) -> None:
        self._set("snapshots/folder", None if value is None else str(value))

    @property
    def snapshot_blur(self) -> str:
        """Which faces snapshots blur: "none", "unknown" or "all" (see faceapp.media.privacy)."""
        from faceapp.media.privacy import BLUR_CHOICES

        value = self._get("privacy/blur", str, "none")
        return value if value in BLUR_CHOICES else "none"

    @snapshot_blur.setter
    def snapshot_blur(self, value: str) -> None:
        from faceapp.media.privacy import normalize_blur

        self._set("privacy/blur", normalize_blur(value))

    @property
    def sample_count(self) -> int:
        """How many samples the webcam enrollment takes."""
        return max(1, min(20, self._get("enroll/samples", int, 5)))

    @sample_count.setter
    def sample_count(self, value: int) -> None:
        self._set("enroll/samples", int(value))

    @property
    def camera(self) -> int:
        """The webcam index opened by default (0 unless chosen in the settings)."""
        return max(0, min(99, self._get("source/camera", int, 0)))

    @camera.setter
    def camera(self, value: int) -> None:
        self._set("source/camera", int(value))

    @property
    def capture_size(self) -> tuple[int, int] | None:
        """The size asked of a camera, (width, height); None: the camera's own."""
        text = self._get("source/capture_size", str, "")
        try:
            width, height = (int(v) for v in text.lower().split("x"))
        except ValueError:
            return None
        return (width, height) if 16 <= width <= 8192 and 16 <= height <= 8192 else None

    @capture_size.setter
    def capture_size(self, value: tuple[int, int] | None) -> None:
        self._set("source/capture_size", None if value is None else f"{int(value[0])}x{int(value[1])}")

    @property
    def min_face_size(self) -> int | None:
        """Faces smaller than this (pixels) are ignored; None: the detector's default."""
        value = self._get("recognition/min_face", int, None)
        return None if value is None else max(0, min(2000, value))

    @min_face_size.setter
    def min_face_size(self, value: int | None) -> None:
        self._set("recognition/min_face", None if value is None else int(value))

    @property
    def tracking(self) -> bool:
        """Follow faces across frames (vote-stable names, embed only when needed)."""
        return self._get("recognition/tracking", bool, True)

    @tracking.setter
    def tracking(self, value: bool) -> None:
        self._set("recognition/tracking", bool(value))

    @property
    def enroll_challenge(self) -> bool:
        """Webcam enrollment ends with a head-turn liveness check (left and right, random order)."""
        return self._get("enrollment/challenge", bool, True)

    @enroll_challenge.setter
    def enroll_challenge(self, value: bool) -> None:
        self._set("enrollment/challenge", bool(value))

    @property
    def enroll_poses(self) -> bool:
        """Webcam enrollment asks for frontal, left and right views and keeps those that add most."""
        return self._get("enrollment/poses", bool, True)

    @enroll_poses.setter
    def enroll_poses(self, value: bool) -> None:
        self._set("enrollment/poses", bool(value))

    @property
    def liveness_badge(self) -> bool:
        """Show a "live" / "photo?" badge on each face (the passive anti-spoofing check; off: faster)."""
        return self._get("recognition/liveness_badge", bool, False)

    @liveness_badge.setter
    def liveness_badge(self, value: bool) -> None:
        self._set("recognition/liveness_badge", bool(value))

    @property
    def gallery_path(self) -> Path | str | None:
        """The gallery chosen in the settings, a file or a ``postgresql://`` URL (None:
        ``$FACEAPP_GALLERY`` or the default)."""
        from faceapp.storage.locations import as_location

        text = self._get("gallery/path", str, "")
        return as_location(text) if text.strip() else None

    @gallery_path.setter
    def gallery_path(self, value: str | os.PathLike | None) -> None:
        self._set("gallery/path", None if value is None or not str(value).strip() else str(value))

    @property
    def alerts(self):
        """The alert rule (:class:`~faceapp.gui.alerts.AlertChoice`; off by default)."""
        from faceapp.recognition.alerts import AlertChoice

        return AlertChoice(
            who=self._get("alerts/who", str, ""), cooldown_s=max(0.0, self._get("alerts/cooldown", float, 60.0)),
            notify=self._get("alerts/notify", bool, True), sound=self._get("alerts/sound", bool, False),
            command=self._get("alerts/command", str, ""), source=self._get("alerts/source", str, ""),
        )

    @alerts.setter
    def alerts(self, value) -> None:
        for key, item in (("who", value.who), ("cooldown", float(value.cooldown_s)), ("notify", bool(value.notify)),
                          ("sound", bool(value.sound)), ("command", value.command), ("source", value.source)):
            self._store.setValue(f"alerts/{key}", item)
        self._store.sync()

    @property
    def remember(self) -> bool:
        """Keep sightings and remember unknown visitors (on by default)."""
        return self._get("memory/remember", bool, True)

    @remember.setter
    def remember(self, value: bool) -> None:
        self._set("memory/remember", bool(value))

    @property
    def language(self) -> str | None:
        """The interface language chosen (a locale name such as "zh_CN"); None: the system's."""
        value = self._get("ui/language", str, "")
        return value or None

    @language.setter
    def language(self, value: str | None) -> None:
        self._set("ui/language", value or None)

    @property
    def geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry", None)
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)
