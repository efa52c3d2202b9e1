"""The main window's Privacy menu.

It turns the gallery's embeddings-only mode on and off, encrypts, re-keys or decrypts
the gallery, chooses which faces snapshots blur, and reopens the gallery when another
program encrypted, decrypted or re-keyed it. Every change of the gallery runs as a job
on the controller's gallery thread (each rewrites rows and wipes freed space, which can
take a while); failures come back as typed errors. Reopening swaps the gallery on the
recognition thread, never between two of its reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QT_TRANSLATE_NOOP
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QMenuBar

from faceapp.errors import FaceAppError
from faceapp.gui.i18n import translate
from faceapp.gui.passphrase import Cancelled, ask_new_passphrase, offer_to_remember, open_gallery
from faceapp.gui.workers.jobs import describe
from faceapp.media.privacy import BLUR_CHOICES
from faceapp.storage import crypto
from faceapp.storage.crypto import PassphraseError
from faceapp.storage.gallery import Gallery
from faceapp.storage.locations import same_location

if TYPE_CHECKING:
    from faceapp.gui.asker import Asker
    from faceapp.gui.settings import AppSettings
    from faceapp.gui.workers.controller import LiveController
    from faceapp.recognition.pipeline import Recognizer

logger = logging.getLogger(__name__)

BLUR_LABELS = {
    "none": QT_TRANSLATE_NOOP("PrivacyMenu", "No faces"),
    "unknown": QT_TRANSLATE_NOOP("PrivacyMenu", "Unknown faces"),
    "all": QT_TRANSLATE_NOOP("PrivacyMenu", "All faces"),
}


class PrivacyWindow(Protocol):
    """What the menu needs of its window (the main window)."""

    gallery: Gallery
    recognizer: Recognizer
    controller: LiveController
    settings: AppSettings
    asker: Asker

    def menuBar(self) -> QMenuBar: ...

    def make_action(self, text: str, slot, shortcut: str | None = None, checkable: bool = False) -> QAction: ...

    def say(self, text: object, ms: int = 8000) -> None: ...

    def close_gallery_windows(self) -> None: ...


class PrivacyMenu:
    """Builds the Privacy menu on ``window`` and carries out its actions."""

    def __init__(self, window: PrivacyWindow) -> None:
        self.window = window
        self._jobs: dict[int, tuple[str, Callable[[Any], str | None] | None]] = {}  # job id -> (what, on success)
        menu: QMenu = window.menuBar().addMenu(translate("PrivacyMenu", "&Privacy"))
        self.menu = menu
        action = window.make_action
        self.embeddings_only_action = action(translate("PrivacyMenu", "Embeddings only (no face thumbnails)"), self.set_embeddings_only, checkable=True)
        self.embeddings_only_action.setToolTip(translate("PrivacyMenu", "Store only embeddings: thumbnails are deleted and never saved again"))
        self.encrypt_action = action(translate("PrivacyMenu", "Encrypt the gallery…"), self.encrypt_gallery)
        self.change_passphrase_action = action(translate("PrivacyMenu", "Change the passphrase…"), self.change_passphrase)
        self.decrypt_action = action(translate("PrivacyMenu", "Decrypt the gallery…"), self.decrypt_gallery)
        self.reopen_gallery_action = action(translate("PrivacyMenu", "Reopen the gallery…"), self.reopen_gallery)
        menu.addAction(self.embeddings_only_action)
        menu.addSeparator()
        for item in (self.encrypt_action, self.change_passphrase_action, self.decrypt_action):
            menu.addAction(item)
        menu.addSeparator()
        blur_menu = menu.addMenu(translate("PrivacyMenu", "Blur in snapshots"))
        self.blur_group = QActionGroup(window)
        self.blur_group.setExclusive(True)
        self.blur_actions: dict[str, QAction] = {}
        current = window.settings.snapshot_blur
        for choice in BLUR_CHOICES:
            item = QAction(translate("PrivacyMenu", BLUR_LABELS[choice]), window)
            item.setCheckable(True)
            item.setChecked(choice == current)
            item.triggered.connect(lambda _=False, choice=choice: self.set_blur(choice))
            self.blur_group.addAction(item)
            blur_menu.addAction(item)
            self.blur_actions[choice] = item
        menu.addSeparator()
        menu.addAction(self.reopen_gallery_action)
        menu.aboutToShow.connect(self.update_actions)
        jobs = window.controller.gallery_jobs
        jobs.finished.connect(self._job_finished)
        jobs.failed.connect(self._job_failed)
        window.controller.jobFinished.connect(self._job_finished)  # the reopening swap
        window.controller.jobFailed.connect(self._job_failed)
        self.update_actions()

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def _actions(self) -> list[QAction]:
        return [self.embeddings_only_action, self.encrypt_action, self.change_passphrase_action, self.decrypt_action,
                self.reopen_gallery_action]

    def update_actions(self) -> None:
        """Enable what applies to the gallery as it is now (nothing while a job runs)."""
        if self.busy:  # a job holds the gallery: do not wait for it on the GUI thread
            for item in self._actions():
                item.setEnabled(False)
            return
        gallery = self.window.gallery
        try:
            encrypted, only = gallery.encrypted, gallery.embeddings_only
        except FaceAppError:
            encrypted, only = gallery.encrypted, self.embeddings_only_action.isChecked()
        self.encrypt_action.setEnabled(not encrypted)
        self.change_passphrase_action.setEnabled(encrypted)
        self.decrypt_action.setEnabled(encrypted)
        self.embeddings_only_action.setEnabled(True)
        self.reopen_gallery_action.setEnabled(True)
        if self.embeddings_only_action.isChecked() != only:
            self.embeddings_only_action.blockSignals(True)
            self.embeddings_only_action.setChecked(only)
            self.embeddings_only_action.blockSignals(False)

    # -- snapshots and embeddings-only mode ------------------------------------------------
    def set_blur(self, choice: str) -> None:
        """Which faces snapshots blur ("none", "unknown", "all"); remembered."""
        self.window.settings.snapshot_blur = choice
        self.blur_actions[choice].setChecked(True)
        label = translate("PrivacyMenu", BLUR_LABELS[choice])
        self.window.say(translate("PrivacyMenu", "Snapshots blur: {faces}.").format(faces=label.lower()), 5000)

    def set_embeddings_only(self, enabled: bool) -> int | None:
        """Turn the gallery's embeddings-only mode on (after confirming: thumbnails are
        deleted and wiped, as a job) or off. Returns the job id, or None."""
        window = self.window
        try:
            if enabled == window.gallery.embeddings_only:
                return None
        except FaceAppError as error:
            window.say(error)
            self.update_actions()
            return None
        if enabled and not window.asker.confirm(
            window,
            translate("PrivacyMenu", "Embeddings only"),
            translate("PrivacyMenu", "Store only embeddings from now on? Every face thumbnail in the gallery will be deleted "
                                     "(this cannot be undone); recognition keeps working and the gallery shows initials."),
        ):
            self.update_actions()
            return None

        def done(deleted: int) -> str:
            if enabled:
                return translate("PrivacyMenu", "Embeddings-only mode is on: {count} thumbnail(s) deleted.").format(count=deleted)
            return translate("PrivacyMenu", "Embeddings-only mode is off.")

        what = translate("PrivacyMenu", "Deleting every thumbnail") if enabled else translate("PrivacyMenu", "Turning embeddings-only mode off")
        return self._run(what, lambda gallery: gallery.set_embeddings_only(enabled), done)

    # -- jobs ------------------------------------------------------------------------------
    def _run(self, what: str, work: Callable[[Gallery], Any], on_success: Callable[[Any], str | None] | None = None) -> int:
        gallery = self.window.gallery
        job_id = self.window.controller.gallery_jobs.submit(lambda: work(gallery))
        self._jobs[job_id] = (what, on_success)
        self.window.say(translate("PrivacyMenu", "{task}…").format(task=what), 0)
        self.update_actions()
        return job_id

    def _job_finished(self, job_id: int, result: Any) -> None:
        if job_id not in self._jobs:
            return
        what, on_success = self._jobs.pop(job_id)
        self.update_actions()
        message = on_success(result) if on_success is not None else None
        self.window.say(message or translate("PrivacyMenu", "{task}: done.").format(task=what))

    def _job_failed(self, job_id: int, error: BaseException) -> None:
        if job_id not in self._jobs:
            return
        what, _ = self._jobs.pop(job_id)
        self.update_actions()
        message = translate("PrivacyMenu", "wrong passphrase; nothing was changed") if isinstance(error, PassphraseError) else describe(error)
        self.window.say(translate("PrivacyMenu", "{task} failed: {reason}").format(task=what, reason=message))

    # -- encryption --------------------------------------------------------------------------
    def _new_passphrase(self, title: str, *labels: str) -> str | None:
        """A new passphrase typed twice, or None (cancelled, or a mismatch said plainly)."""
        try:
            return ask_new_passphrase(self.window.asker, self.window, title, *labels)
        except Cancelled:
            return None
        except FaceAppError as error:
            self.window.say(error)
            return None

    def encrypt_gallery(self) -> int | None:
        """Ask for a new passphrase (twice) and encrypt the gallery on the gallery thread."""
        passphrase = self._new_passphrase(translate("PrivacyMenu", "Encrypt the gallery"), translate("PrivacyMenu", "Passphrase for the gallery"))
        if passphrase is None:
            return None
        path = self.window.gallery.path

        def done(_):
            offer_to_remember(path, passphrase, self.window.asker, self.window)
            return translate("PrivacyMenu", "The gallery is encrypted. Keep the passphrase safe: without it the gallery cannot be opened.")

        return self._run(translate("PrivacyMenu", "Encrypting the gallery"), lambda gallery: gallery.encrypt(passphrase), done)

    def change_passphrase(self) -> int | None:
        old = self.window.asker.password(self.window, translate("PrivacyMenu", "Change the passphrase"), translate("PrivacyMenu", "Current passphrase:"))
        if old is None:
            return None
        new = self._new_passphrase(translate("PrivacyMenu", "Change the passphrase"))
        if new is None:
            return None
        path = self.window.gallery.path

        def done(_):
            if crypto.keyring_passphrase(path) is not None:
                crypto.store_keyring_passphrase(path, new)
            return translate("PrivacyMenu", "The gallery's passphrase is changed.")

        return self._run(translate("PrivacyMenu", "Changing the passphrase"), lambda gallery: gallery.change_passphrase(old, new), done)

    def decrypt_gallery(self) -> int | None:
        old = self.window.asker.password(self.window, translate("PrivacyMenu", "Decrypt the gallery"), translate("PrivacyMenu", "Current passphrase (the gallery will be stored unencrypted):"))
        if old is None:
            return None
        path = self.window.gallery.path

        def done(_):
            crypto.forget_keyring_passphrase(path)
            return translate("PrivacyMenu", "The gallery is decrypted: it is stored unencrypted now.")

        return self._run(translate("PrivacyMenu", "Decrypting the gallery"), lambda gallery: gallery.decrypt(old), done)

    def reopen_gallery(self) -> bool:
        """Open the gallery file again (asking for its passphrase if it is encrypted now)
        and switch recognition and every window to it. False if cancelled or it failed."""
        return self.switch_gallery(self.window.gallery.reopen_location)

    def switch_gallery(self, path) -> bool:
        """Open the gallery ``path`` (a new name makes a new, empty gallery), asking for its
        passphrase if it is encrypted, and switch recognition and every window to it."""
        window = self.window
        reopening = same_location(path, window.gallery.reopen_location)
        try:
            new = open_gallery(path, window.asker, window)
        except FaceAppError as error:
            window.say(error)
            return False
        if new is None:
            return False
        old = window.gallery
        window.close_gallery_windows()
        window.gallery = new
        recognizer = window.recognizer

        def swap(_recognizer, _cancelled):  # on the recognition thread: never between its reads
            recognizer.gallery = new
            old.close()

        done = (translate("PrivacyMenu", "The gallery was opened again.") if reopening else
                translate("PrivacyMenu", "Now using the gallery {path}.").format(path=new.path))
        job_id = window.controller.submit(swap)
        self._jobs[job_id] = (translate("PrivacyMenu", "Opening the gallery"), lambda _: done)
        window.say(translate("PrivacyMenu", "Opening the gallery…"), 0)
        self.update_actions()
        return True
