"""Snapshots: the frame on screen, with its boxes and names, saved as a PNG in the
snapshot folder. Faces are blurred as chosen under Privacy, and in embeddings-only mode
a snapshot is refused unless every face is blurred (:mod:`faceapp.media.privacy`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from faceapp.errors import FaceAppError
from faceapp.gui.i18n import translate
from faceapp.media.imageio import write_image
from faceapp.media.privacy import PrivacyError, PrivacyPolicy, check_image_write, render_output

if TYPE_CHECKING:
    from faceapp.gui.settings import AppSettings
    from faceapp.gui.workers.controller import LiveController
    from faceapp.storage.gallery import Gallery

logger = logging.getLogger(__name__)


class SnapshotWindow(Protocol):
    """What a snapshot needs of its window (the main window)."""

    settings: AppSettings
    gallery: Gallery
    controller: LiveController

    def say(self, text: object, ms: int = 8000) -> None: ...


def next_free_path(folder: Path) -> Path:
    """``faceapp-YYYYmmdd-HHMMSS.png`` in ``folder``, numbered if it exists already."""
    path = folder / time.strftime("faceapp-%Y%m%d-%H%M%S.png")
    counter = 1
    while path.exists():
        path = folder / time.strftime(f"faceapp-%Y%m%d-%H%M%S-{counter}.png")
        counter += 1
    return path


def save_snapshot(window: SnapshotWindow) -> Path | None:
    """Save the frame ``window`` shows; the path written, or None (the status bar says why)."""
    packet = window.controller.latest
    if packet is None:
        window.say(translate("Snapshots", "Nothing to save yet: no frame has been shown."), 5000)
        return None
    try:
        policy = PrivacyPolicy.for_gallery(window.gallery, window.settings.snapshot_blur)
        check_image_write(policy, "a snapshot")
    except FaceAppError as error:  # PrivacyError, or the gallery cannot say
        prefix = "" if isinstance(error, PrivacyError) else translate("Snapshots", "Cannot save the snapshot:") + " "
        window.say(f"{prefix}{error}")
        return None
    folder = window.settings.snapshot_dir
    path = next_free_path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_image(path, render_output(packet.image, packet.result, policy.blur))
    except (OSError, FaceAppError) as error:
        reason = getattr(error, "strerror", None) or error
        window.say(translate("Snapshots", "Cannot save the snapshot:") + f" {reason}")
        return None
    window.say(translate("Snapshots", "Saved {path}").format(path=path), 5000)
    return path
