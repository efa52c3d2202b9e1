"""Privacy in the GUI: encrypted galleries, embeddings-only mode, blurred snapshots,
encrypted exports, and a camera that stalls."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from faceapp.gui.dialogs.gallery import ENCRYPT, INITIALS_ROLE, NAME, GalleryDialog
from faceapp.gui.passphrase import open_gallery
from faceapp.gui.settings import AppSettings
from faceapp.media.imageio import read_image
from faceapp.media.privacy import render_output
from faceapp.storage import crypto
from faceapp.storage.crypto import KdfParams
from faceapp.storage.gallery import Gallery

WAIT_MS = 20_000
FAST_KDF = KdfParams(n=2**10, r=8, p=1)  # the tests' galleries: fast to unlock


@pytest.fixture(autouse=True)
def no_outside_passphrase(monkeypatch):
    """Neither the environment nor a keyring may answer for the user."""
    monkeypatch.delenv(crypto.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(crypto, "keyring_passphrase", lambda path: None)


def encrypted_gallery(path, passphrase="right", people=None):
    with Gallery(path) as gallery:
        for name, templates in (people or {}).items():
            gallery.add_person(name, templates)
        gallery.encrypt(passphrase, kdf=FAST_KDF)
    return path


def test_encrypted_gallery_asks_again_until_the_passphrase_is_right(tmp_path, asker_factory):
    path = encrypted_gallery(tmp_path / "locked.sqlite3")
    asker = asker_factory(password=["wrong", "", "right"])
    gallery = open_gallery(path, asker)
    try:
        assert gallery is not None and gallery.encrypted
    finally:
        gallery.close()
    questions = [text for _, text in asker.asked]
    assert len(questions) == 3 and "encrypted" in questions[0]
    assert questions[1].startswith("Wrong passphrase.") and "cannot be empty" in questions[2]


def test_encrypted_gallery_opens_with_the_environment_passphrase(tmp_path, asker_factory, monkeypatch):
    path = encrypted_gallery(tmp_path / "locked.sqlite3")
    monkeypatch.setenv(crypto.PASSPHRASE_ENV, "right")
    asker = asker_factory()  # any question fails the test
    with open_gallery(path, asker) as gallery:
        assert gallery.encrypted
    monkeypatch.setenv(crypto.PASSPHRASE_ENV, "stale")
    asker = asker_factory(password=["right"])
    with open_gallery(path, asker) as gallery:
        assert gallery.encrypted
    assert "FACEAPP_PASSPHRASE is wrong" in asker.asked[0][1]


def test_cancelling_the_passphrase_quits_in_one_line(tmp_path, asker_factory, capsys):

    from faceapp.gui.app import run_app

    path = encrypted_gallery(tmp_path / "locked.sqlite3")
    from faceapp.recognition.pipeline import PipelineConfig

    assert run_app(PipelineConfig(device="cpu"), path, asker=asker_factory(password=[None])) == 1
    error = capsys.readouterr().err
    assert "cancelled" in error and error.count("\n") == 1


def test_embeddings_only_gallery_shows_initials(qtbot, gallery_with, asker_factory):
    gallery = gallery_with("obama", "biden")
    dialog = GalleryDialog(gallery, asker_factory(), poll_ms=50)
    qtbot.addWidget(dialog)
    assert dialog.table.item(0, NAME).data(INITIALS_ROLE) == ""  # thumbnails while they exist
    gallery.set_embeddings_only(True)
    qtbot.waitUntil(lambda: dialog.embeddings_only, timeout=5000)
    assert [dialog.table.item(row, NAME).data(INITIALS_ROLE) for row in range(2)] == ["B", "O"]
    assert not dialog.table.item(0, NAME).icon().isNull()
    assert dialog.select("obama") and dialog.templates.count() == 2
    assert dialog.templates.item(0).data(INITIALS_ROLE) == "O"
    dialog.close()


def test_embeddings_only_toggle_asks_first(qtbot, make_window, gallery_with, asker_factory):
    gallery = gallery_with("obama")
    window = make_window(asker=asker_factory(confirm=[False, True]))
    window.privacy.embeddings_only_action.trigger()  # declined: nothing changes
    assert not gallery.embeddings_only and not window.privacy.embeddings_only_action.isChecked()
    window.privacy.embeddings_only_action.trigger()  # deleting and wiping runs on the gallery thread
    qtbot.waitUntil(lambda: not window.privacy.busy, timeout=WAIT_MS)
    assert gallery.embeddings_only and window.privacy.embeddings_only_action.isChecked()
    assert all(t.thumbnail is None for t in gallery.templates())
    assert "2 thumbnail(s) deleted" in window.statusBar().currentMessage()
    window.privacy.embeddings_only_action.trigger()  # off again: no question
    qtbot.waitUntil(lambda: not window.privacy.busy, timeout=WAIT_MS)
    assert not gallery.embeddings_only


def test_snapshots_follow_the_privacy_settings(qtbot, make_window, gallery_with, biden_frames, camera_factory, settings):
    gallery = gallery_with("biden")
    gallery.set_embeddings_only(True)
    window = make_window(opener=camera_factory(biden_frames).open)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)

    assert window.snapshot() is None  # embeddings-only, faces not blurred: refused
    assert "embeddings-only mode is on" in window.statusBar().currentMessage().lower()
    assert not list(settings.snapshot_dir.glob("*.png"))

    window.privacy.blur_actions["all"].trigger()
    assert AppSettings.at(settings.location).snapshot_blur == "all"
    packet = window.controller.latest
    path = window.snapshot()
    assert path is not None
    written = read_image(path).astype(np.int16)
    plain = render_output(packet.image, packet.result, "none").astype(np.int16)
    assert written.shape == plain.shape
    for face in packet.result.faces:
        x, y, w, h = (int(v) for v in face.detection.box)
        inner = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))  # inside the drawn box
        assert np.abs(written[inner] - plain[inner]).mean() > 5
    corner = (slice(0, 40), slice(0, 40))  # far from the face: untouched
    assert np.array_equal(written[corner], plain[corner])


def test_encrypt_change_and_decrypt_from_the_privacy_menu(qtbot, make_window, gallery_with, asker_factory):
    gallery = gallery_with("obama")
    asker = asker_factory(password=["pw", "pw", "bad", "new", "new", "pw", "new", "new", "new"])
    window = make_window(asker=asker)
    assert window.privacy.encrypt_action.isEnabled() and not window.privacy.decrypt_action.isEnabled()

    window.privacy.encrypt_action.trigger()
    assert not window.privacy.encrypt_action.isEnabled()  # busy until the job is done
    qtbot.waitUntil(lambda: "is encrypted" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    assert gallery.encrypted and Gallery.is_encrypted_file(gallery.path)
    assert window.privacy.change_passphrase_action.isEnabled() and window.privacy.decrypt_action.isEnabled()

    window.privacy.change_passphrase_action.trigger()  # the current passphrase is wrong
    qtbot.waitUntil(lambda: "failed" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    assert "wrong passphrase; nothing was changed" in window.statusBar().currentMessage()
    window.privacy.change_passphrase_action.trigger()
    qtbot.waitUntil(lambda: "is changed" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    with pytest.raises(crypto.PassphraseError):
        Gallery(gallery.path, passphrase="pw")

    window.privacy.decrypt_action.trigger()
    qtbot.waitUntil(lambda: "is decrypted" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    assert not gallery.encrypted and not Gallery.is_encrypted_file(gallery.path)
    assert [p.name for p in gallery.people()] == ["obama"]


def test_new_passphrases_that_differ_change_nothing(make_window, gallery_with, asker_factory):
    gallery = gallery_with("obama")
    window = make_window(asker=asker_factory(password=["one", "two"]))
    window.privacy.encrypt_action.trigger()
    assert "differ" in window.statusBar().currentMessage() and not gallery.encrypted


def test_a_gallery_rekeyed_elsewhere_is_said_plainly_and_can_be_reopened(qtbot, make_window, gallery_with, biden_frames, camera_factory, asker_factory):
    gallery = gallery_with("biden")
    window = make_window(opener=camera_factory(biden_frames).open, asker=asker_factory(password=["elsewhere"]))
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    with Gallery(gallery.path) as other:  # another program encrypts it
        other.encrypt("elsewhere", kdf=FAST_KDF)
    qtbot.waitUntil(lambda: "by another program" in window.error_label.text(), timeout=WAIT_MS)
    assert "Reopen the gallery" in window.error_label.text()

    window.privacy.reopen_gallery_action.trigger()
    try:
        qtbot.waitUntil(lambda: window.recognizer.gallery is window.gallery and window.error_label.text() == "", timeout=WAIT_MS)
        assert window.gallery.encrypted
        qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    finally:
        window.close()
        window.gallery.close()


def test_encrypted_export_and_import(qtbot, gallery_with, asker_factory, tmp_path, gallery_jobs):
    from faceapp.storage.archive import archive_is_encrypted

    archive = tmp_path / "export.zip"
    asker = asker_factory(save_file=[str(archive)], choose=[ENCRYPT], password=["s3cret", "s3cret"])
    dialog = GalleryDialog(gallery_with("obama", "biden"), asker, jobs=gallery_jobs)
    qtbot.addWidget(dialog)
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=WAIT_MS)
    assert archive_is_encrypted(archive) and "(encrypted)" in dialog.message.text()

    with Gallery(tmp_path / "other.sqlite3") as other:
        asker = asker_factory(open_file=[str(archive)], password=["bad", "s3cret"])
        other_dialog = GalleryDialog(other, asker)  # without a runner: the dialog runs its own thread
        qtbot.addWidget(other_dialog)
        other_dialog.import_button.click()
        qtbot.waitUntil(lambda: "imported" in other_dialog.message.text(), timeout=WAIT_MS)
        assert {p.name for p in other.people()} == {"obama", "biden"}
        assert "imported 2 new people" in other_dialog.message.text()
        assert asker.asked[2][1].startswith("Wrong passphrase.")
        other_dialog.close()
    dialog.close()


class StallingCamera:
    """Sends a few frames, then stops answering (a read blocking until released)."""

    def __init__(self, frames, good: int = 5) -> None:
        self.frames, self.good = frames, good
        self.release = threading.Event()
        self.opens = 0

    def open(self, spec=None):
        self.opens += 1
        return self._frames()

    def _frames(self):
        for index in range(self.good):
            time.sleep(0.03)
            yield self.frames[index % len(self.frames)]
        self.release.wait(30)  # stalled


def test_a_stalled_camera_is_reconnected(qtbot, make_window, biden_frames):
    camera = StallingCamera(biden_frames)
    window = make_window(opener=camera.open, stall_timeout_s=0.3)
    banners: list[str] = []
    window.controller.statusChanged.connect(lambda status: banners.append(window.view.banner))
    try:
        window.open_source_text("0")
        qtbot.waitUntil(lambda: any("reconnecting" in b for b in banners), timeout=WAIT_MS)
        assert any("no frame for 0.3 s" in b for b in banners)
        qtbot.waitUntil(lambda: camera.opens >= 2, timeout=WAIT_MS)
    finally:
        camera.release.set()
