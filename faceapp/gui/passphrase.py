"""Passphrases in the GUI: unlocking an encrypted gallery, choosing a new passphrase.

Every question goes through the window's :class:`~faceapp.gui.asker.Asker` (tests answer
at once). Where a passphrase comes from, in order: ``$FACEAPP_PASSPHRASE``, the OS
keyring (when the optional ``keyring`` package has a usable backend), then the user. A
wrong one is said plainly and asked again; cancelling gives None.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtWidgets import QWidget

from faceapp.files import on_read_only_filesystem
from faceapp.gui.asker import Asker
from faceapp.gui.i18n import translate
from faceapp.storage import crypto
from faceapp.storage.crypto import PassphraseError
from faceapp.storage.gallery import Gallery
from faceapp.storage.locations import describe, is_server_url, redacted

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """The user cancelled a passphrase question."""


def keyring_available() -> bool:
    """True when the ``keyring`` package is installed and has a real backend."""
    try:
        import keyring  # type: ignore[import-not-found]
        from keyring.backends import fail  # type: ignore[import-not-found]
    except ImportError:
        return False
    try:
        return not isinstance(keyring.get_keyring(), fail.Keyring)
    except Exception:  # noqa: BLE001 -- a broken backend is no backend
        return False


#: In the desktop app an operation waits this long for a server gallery it cannot reach
#: (the status bar says why), rather than the command line's 10 s.
GUI_RETRY_S = 3.0


def open_gallery(path: str | os.PathLike[str], asker: Asker, parent: QWidget | None = None) -> Gallery | None:
    """Open the gallery ``path``, asking for its passphrase when it is encrypted.

    Returns None when the user cancels the passphrase question. Other problems raise
    GalleryError as :class:`Gallery` does.
    """
    gallery = _open_gallery(path, asker, parent)
    if gallery is not None:
        gallery.retry_s = GUI_RETRY_S
    return gallery


def _open_gallery(path: str | os.PathLike[str], asker: Asker, parent: QWidget | None) -> Gallery | None:
    # On read-only media the gallery still opens, for reading (changes are then refused).
    server = is_server_url(path)
    read_only = not server and os.path.exists(path) and on_read_only_filesystem(path)
    if not Gallery.is_encrypted_file(path):
        return Gallery(path, read_only=read_only)
    name = redacted(path) if server else os.path.basename(os.fspath(path)) or os.fspath(path)
    problem = ""
    for source, passphrase in (
        (f"${crypto.PASSPHRASE_ENV}", crypto.passphrase_from_env()),
        (translate("Passphrase", "the keyring"), crypto.keyring_passphrase(path)),
    ):
        if passphrase is None:
            continue
        try:
            return Gallery(path, passphrase=passphrase, read_only=read_only)
        except PassphraseError:
            logger.warning("the passphrase from %s does not open %s", source, describe(path))
            problem = translate("Passphrase", "The passphrase from {source} is wrong.").format(source=source)
    label = translate("Passphrase", "The gallery {name} is encrypted. Passphrase:").format(name=name)
    while True:
        question = f"{problem}\n\n{label}" if problem else label
        passphrase = asker.password(parent, translate("Passphrase", "Unlock the gallery"), question)
        if passphrase is None:
            return None
        if not passphrase:
            problem = translate("Passphrase", "The passphrase cannot be empty.")
            continue
        try:
            gallery = Gallery(path, passphrase=passphrase, read_only=read_only)
        except PassphraseError:
            problem = translate("Passphrase", "Wrong passphrase.")
            continue
        offer_to_remember(path, passphrase, asker, parent)
        return gallery


def offer_to_remember(path: str | os.PathLike[str], passphrase: str, asker: Asker, parent: QWidget | None = None) -> bool:
    """Ask whether to keep ``passphrase`` in the OS keyring (only when one exists)."""
    if not keyring_available():
        return False
    if not asker.confirm(parent, translate("Passphrase", "Remember the passphrase"),
                         translate("Passphrase", "Remember this gallery's passphrase in the system keyring?")):
        return False
    return crypto.store_keyring_passphrase(path, passphrase)


def ask_new_passphrase(asker: Asker, parent: QWidget | None, title: str, what: str | None = None) -> str:
    """A new passphrase, typed twice. Raises :class:`Cancelled` when cancelled and
    PassphraseError (a plain line) when empty or the two differ."""
    what = what or translate("Passphrase", "New passphrase")
    first = asker.password(parent, title, translate("Passphrase", "{what}:").format(what=what))
    if first is None:
        raise Cancelled
    if not first:
        raise PassphraseError(translate("Passphrase", "the passphrase cannot be empty"))
    second = asker.password(parent, title, translate("Passphrase", "{what} again, to be sure:").format(what=what))
    if second is None:
        raise Cancelled
    if second != first:
        raise PassphraseError(translate("Passphrase", "the two passphrases differ; nothing was changed"))
    return first


__all__ = ["Cancelled", "ask_new_passphrase", "keyring_available", "offer_to_remember", "open_gallery"]
