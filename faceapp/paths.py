"""Default locations of user files (platformdirs), each overridable by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path


def default_gallery_path() -> Path:
    """``$FACEAPP_GALLERY``, else ``<user data dir>/faceapp/gallery.sqlite3``."""
    override = os.environ.get("FACEAPP_GALLERY")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("faceapp", appauthor=False)) / "gallery.sqlite3"
