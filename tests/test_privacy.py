"""Privacy: encrypted galleries and exports, embeddings-only mode, secure deletion, blurring.

Synthetic embeddings and fake thumbnails; scrypt runs with a small cost (FAST_KDF) so the
tests stay fast (the default parameters are checked once).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faceapp.errors import GalleryError
from faceapp.media.privacy import PrivacyError, PrivacyPolicy, blur_faces, check_image_write, initials, render_output
from faceapp.storage import crypto
from faceapp.storage.archive import archive_is_encrypted, export_gallery, import_gallery
from faceapp.storage.crypto import KdfParams, PassphraseError
from faceapp.storage.gallery import SCHEMA_VERSION, Gallery, NewTemplate
from faceapp.types import Detection, FaceResult, FrameResult, Match, StageTimes

FAST_KDF = KdfParams(n=2**10, r=8, p=1)
DIM = 16
MODEL = "privacy-test"
# Distinctive bytes we can look for in the raw file.
MARK_EMBEDDING = np.full(DIM, 1 / np.sqrt(DIM), dtype="<f4")  # a unit vector with a recognisable byte pattern
MARK_THUMB = b"\xff\xd8\xff\xe0" + b"SECRET-FACE-THUMBNAIL-" * 40


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch):
    monkeypatch.setattr(crypto, "DEFAULT_KDF", FAST_KDF)


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def tmpl(seed: int, thumbnail: bytes | None = None) -> NewTemplate:
    return NewTemplate(embedding=vec(seed), model_id=MODEL, thumbnail=thumbnail, source=f"photo{seed}.jpg")


def raw_bytes(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def contents(g: Gallery) -> dict:
    people, templates = g.snapshot()
    names = {p.id: p.name for p in people}
    return {(names[t.person_id], t.embedding.tobytes(), t.thumbnail) for t in templates}


# --------------------------------------------------------------------------- encryption


def test_encrypted_gallery_round_trip_and_nothing_plain_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        assert not g.encrypted
        g.add_person("Ada", [NewTemplate(MARK_EMBEDDING, MODEL, thumbnail=MARK_THUMB)])
        g.add_person("Bob", [tmpl(1), tmpl(2, MARK_THUMB)])
        before = contents(g)
        g.encrypt("correct horse")
        assert g.encrypted
        assert contents(g) == before  # readable while open
        m = g.matrix(MODEL)
        assert m.embeddings.shape == (3, DIM)
    assert Gallery.is_encrypted_file(path)
    data = raw_bytes(path)
    assert MARK_THUMB[4:40] not in data
    assert MARK_EMBEDDING.tobytes() not in data
    assert b"Ada" in data  # names stay plaintext (documented)
    with Gallery(path, passphrase="correct horse") as g:
        assert contents(g) == before
        g.add_templates("Ada", [tmpl(3, MARK_THUMB)])  # new writes are encrypted too
        assert len(g.templates("Ada")) == 2
    assert MARK_THUMB[4:40] not in raw_bytes(path)


def test_missing_or_wrong_passphrase_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("Ada", [tmpl(1)])
        g.encrypt("right")
        revision = g.revision()
    raw = path.read_bytes()
    with pytest.raises(PassphraseError, match="encrypted: give its passphrase.*FACEAPP_PASSPHRASE"):
        Gallery(path)
    with pytest.raises(PassphraseError, match="wrong passphrase for gallery"):
        Gallery(path, passphrase="wrong")
    assert path.read_bytes() == raw
    with Gallery(path, passphrase="right") as g:
        assert g.revision() == revision
        assert isinstance(PassphraseError("x"), GalleryError)


def test_change_passphrase_and_decrypt(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("Ada", [tmpl(1, MARK_THUMB), tmpl(2)])
        before = contents(g)
        g.encrypt("one")
        with pytest.raises(PassphraseError):
            g.change_passphrase("not it", "two")
        assert contents(g) == before
        g.change_passphrase("one", "two")
        assert contents(g) == before
    with pytest.raises(PassphraseError):
        Gallery(path, passphrase="one")
    with Gallery(path, passphrase="two") as g:
        with pytest.raises(PassphraseError):
            g.decrypt("one")
        g.decrypt("two")
        assert not g.encrypted
    with Gallery(path) as g:
        assert contents(g) == before
    assert MARK_THUMB[4:40] in raw_bytes(path)


def test_other_process_rekey_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("Ada", [tmpl(1)])
    with Gallery(path) as stale, Gallery(path) as other:
        other.encrypt("pw")
        with pytest.raises(GalleryError, match="another program"):
            stale.add_templates("Ada", [tmpl(2)])  # would have written plaintext into an encrypted gallery
        with pytest.raises(GalleryError, match="another program"):
            stale.people()


def test_swapped_blobs_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("Ada", [tmpl(1)])
        g.add_person("Bob", [tmpl(2)])
        g.encrypt("pw")
    conn = sqlite3.connect(path)
    (a, ea), (b, eb) = conn.execute("SELECT id, embedding FROM templates ORDER BY id").fetchall()
    conn.execute("UPDATE templates SET embedding = ? WHERE id = ?", (eb, a))
    conn.execute("UPDATE templates SET embedding = ? WHERE id = ?", (ea, b))
    conn.commit()
    conn.close()
    with Gallery(path, passphrase="pw") as g, pytest.raises(GalleryError, match="cannot be decrypted"):
        g.matrix(MODEL)


def test_schema_v1_gallery_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    from faceapp.storage.schema import _migrate_v1

    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value)")
    conn.execute("INSERT INTO meta VALUES ('revision', 0), ('schema_version', 1)")
    _migrate_v1(conn)
    conn.execute("INSERT INTO people VALUES (1, 'Old', 0)")
    conn.execute("INSERT INTO templates VALUES (1, 1, ?, ?, ?, 1.0, NULL, '', 0)", (vec(5).tobytes(), DIM, MODEL))
    conn.commit()
    conn.close()
    with Gallery(path) as g:
        assert [p.name for p in g.people()] == ["Old"]
        assert not g.encrypted and not g.embeddings_only
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def test_default_kdf_is_memory_hard_and_params_are_bounded() -> None:
    assert crypto.KdfParams().n >= 2**14 and crypto.KdfParams().r >= 8
    params = KdfParams(n=2**10).with_new_salt()
    assert KdfParams.from_json(params.to_json()) == params
    for bad in ('{"name": "scrypt", "n": 1073741824, "r": 8, "p": 1, "salt": "AAAAAAAAAAA="}',
                '{"name": "argon9"}', "[]", '{"name": "scrypt", "n": 3, "r": 8, "p": 1, "salt": "AAAAAAAAAAA="}'):
        with pytest.raises(ValueError):
            KdfParams.from_json(bad)


def test_keyring_is_optional(tmp_path: Path) -> None:
    # No keyring package or backend here: every call answers "not available", never raises.
    assert crypto.keyring_passphrase(tmp_path / "g.db") in (None, "pw")
    assert isinstance(crypto.store_keyring_passphrase(tmp_path / "g.db", "pw"), bool)
    crypto.forget_keyring_passphrase(tmp_path / "g.db")


def test_passphrase_from_env(monkeypatch) -> None:
    monkeypatch.delenv(crypto.PASSPHRASE_ENV, raising=False)
    assert crypto.passphrase_from_env() is None
    monkeypatch.setenv(crypto.PASSPHRASE_ENV, "s3cret")
    assert crypto.passphrase_from_env() == "s3cret"


# --------------------------------------------------------------------------- encrypted exports


def test_encrypted_export_round_trip(tmp_path: Path) -> None:
    with Gallery(tmp_path / "a.db") as g:
        g.add_person("Ada", [tmpl(1, MARK_THUMB), tmpl(2)])
        expected = contents(g)
        out = export_gallery(g, tmp_path / "x.faceapp.zip", passphrase="export pw")
    data = out.read_bytes()
    assert data.startswith(crypto.ENCRYPTED_MAGIC) and b"manifest.json" not in data and b"SECRET" not in data
    assert archive_is_encrypted(out)
    with Gallery(tmp_path / "b.db") as g:
        with pytest.raises(PassphraseError, match="is encrypted"):
            import_gallery(g, out)
        with pytest.raises(PassphraseError, match="wrong passphrase"):
            import_gallery(g, out, passphrase="nope")
        assert g.people() == []
        summary = import_gallery(g, out, passphrase="export pw")
        assert summary.people_added == 1 and contents(g) == expected


def test_damaged_encrypted_export_is_refused(tmp_path: Path) -> None:
    with Gallery(tmp_path / "a.db") as g:
        g.add_person("Ada", [tmpl(1)])
        out = export_gallery(g, tmp_path / "x.zip", passphrase="pw")
    data = bytearray(out.read_bytes())
    data[-5] ^= 1
    out.write_bytes(bytes(data))
    with Gallery(tmp_path / "b.db") as g, pytest.raises(GalleryError):
        import_gallery(g, out, passphrase="pw")


# --------------------------------------------------------------------------- deletion


def test_removed_person_leaves_no_trace_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("Zed Unique-Name", [NewTemplate(MARK_EMBEDDING, MODEL, thumbnail=MARK_THUMB, source="zed-src.jpg")])
        g.add_person("Keep", [tmpl(1)])
        with Gallery(path) as reader:  # another connection must not keep the data alive
            assert len(reader.people()) == 2
        assert MARK_THUMB[4:40] in raw_bytes(path)
        g.remove("Zed Unique-Name")
        assert [p.name for p in g.people()] == ["Keep"]
    data = raw_bytes(path)
    for needle in (MARK_THUMB[4:40], MARK_EMBEDDING.tobytes(), b"Zed Unique-Name", b"zed-src.jpg"):
        assert needle not in data, needle


def test_removed_template_is_wiped(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("Ada", [tmpl(1), NewTemplate(MARK_EMBEDDING, MODEL, thumbnail=MARK_THUMB)])
        g.remove_template(g.templates("Ada")[1].id)
    data = raw_bytes(path)
    assert MARK_THUMB[4:40] not in data and MARK_EMBEDDING.tobytes() not in data


def test_secure_delete_is_on(tmp_path: Path) -> None:
    with Gallery(tmp_path / "g.db") as g:
        assert g._require().execute("PRAGMA secure_delete").fetchone()[0] == 1


# --------------------------------------------------------------------------- embeddings-only mode


def test_embeddings_only_mode_drops_and_refuses_thumbnails(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("Ada", [tmpl(1, MARK_THUMB)])
        assert g.set_embeddings_only(True) == 1
        assert g.embeddings_only
        assert all(t.thumbnail is None for t in g.templates())
        g.add_person("Bob", [tmpl(2, MARK_THUMB)])
        assert all(t.thumbnail is None for t in g.templates())
        out = export_gallery(g, tmp_path / "x.zip")
    assert MARK_THUMB[4:40] not in raw_bytes(path)
    with Gallery(tmp_path / "c.db") as g2:
        g2.set_embeddings_only(True)
        with Gallery(tmp_path / "d.db") as src:
            src.add_person("Cy", [tmpl(3, MARK_THUMB)])
            export_gallery(src, tmp_path / "y.zip")
        import_gallery(g2, tmp_path / "y.zip")
        assert g2.templates("Cy")[0].thumbnail is None
    with Gallery(path) as g:
        assert g.embeddings_only  # stored in the gallery
        g.set_embeddings_only(False)
        assert not g.embeddings_only
    assert out.is_file()


def test_image_writes_follow_the_policy() -> None:
    check_image_write(PrivacyPolicy())
    check_image_write(PrivacyPolicy(embeddings_only=True, blur="all"))
    with pytest.raises(PrivacyError, match="embeddings-only"):
        check_image_write(PrivacyPolicy(embeddings_only=True, blur="unknown"))
    with pytest.raises(ValueError):
        PrivacyPolicy(blur="some")


def test_initials() -> None:
    assert initials("Ada Lovelace") == "AL"
    assert initials("jean paul sartre") == "JS"
    assert initials("madonna") == "M"
    assert initials("") == "?"
    assert initials("émile zola") == "ÉZ"


# --------------------------------------------------------------------------- blurring


def _result(*faces: tuple[tuple[float, float, float, float], str | None]) -> FrameResult:
    out = []
    for box, name in faces:
        det = Detection(box=box, score=0.9, landmarks=np.zeros((5, 2), np.float32))
        match = Match(name=name, similarity=0.5, best_name=name, margin=0.1, threshold=0.3)
        out.append(FaceResult(det, np.zeros(DIM, np.float32), match))
    return FrameResult(tuple(out), StageTimes(), (0, 0))


def _textured(h: int = 200, w: int = 300) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_blur_unknown_faces_only() -> None:
    image = _textured()
    result = _result(((20, 20, 60, 60), None), ((180, 40, 60, 60), "Ada"))
    out = blur_faces(image, result, "unknown")
    assert out.shape == image.shape and out.dtype == np.uint8
    unknown, known = (slice(20, 80), slice(20, 80)), (slice(40, 100), slice(180, 240))
    assert np.abs(out[unknown].astype(int) - image[unknown]).mean() > 30  # scrambled
    assert np.array_equal(out[known], image[known])  # enrolled face untouched
    assert out[unknown].std() < image[unknown].std() / 3  # detail gone
    everything = blur_faces(image, result, "all")
    assert not np.array_equal(everything[known], image[known])
    assert np.array_equal(blur_faces(image, result, None), image)
    assert np.array_equal(image, _textured())  # input untouched


def test_blur_handles_odd_boxes() -> None:
    image = _textured(50, 50)
    result = _result(((-30, -30, 40, 40), None), ((45, 45, 100, 100), None), ((10, 10, 0, 0), None),
                     ((float("nan"), 1, 5, 5), None), ((1000, 1000, 5, 5), None), ((10, 10, 1, 1), None))
    assert blur_faces(image, result, "all").shape == image.shape
    sane = _result(((-30, -30, 40, 40), None), ((45, 45, 100, 100), "Ada"), ((10, 10, 1, 1), None))
    assert render_output(image, sane, "all").shape == image.shape


def test_recording_blurs_faces(tmp_path: Path, monkeypatch) -> None:
    """run_recognition(..., blur=...) writes blurred frames; refused in embeddings-only mode."""
    from faceapp.media.sources import Frame, FrameSource
    from faceapp.recognition import run as recognize

    frame = _textured(120, 160)
    face = _result(((30, 30, 50, 50), None))

    class OneFrame(FrameSource):
        fps = 5.0

        def __iter__(self):
            yield Frame(0, 0.0, frame)

    written = []

    class Writer:
        def __init__(self, path, fps):
            pass

        def write(self, image):
            written.append(image)

        def commit(self):
            pass

        def discard(self):
            pass

    class FakeRecognizer:
        gallery = None

        def process(self, image, tracking=None, video=None):
            return face

    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"")  # a file source; its frames come from the opener below
    monkeypatch.setattr(recognize, "_VideoWriter", Writer)
    recognize.run_recognition(FakeRecognizer(), str(clip), out=str(tmp_path / "o.avi"), show_progress=False, opener=OneFrame,
                              tracking=False, blur="unknown")
    region = (slice(32, 78), slice(32, 78))
    assert np.abs(written[0][region].astype(int) - frame[region]).mean() > 30
    with Gallery(tmp_path / "g.db") as g:
        g.set_embeddings_only(True)
        FakeRecognizer.gallery = g
        with pytest.raises(PrivacyError):
            recognize.run_recognition(FakeRecognizer(), str(clip), out=str(tmp_path / "p.avi"), show_progress=False, opener=OneFrame,
                                      tracking=False, blur="unknown")
        recognize.run_recognition(FakeRecognizer(), str(clip), out=str(tmp_path / "p.avi"), show_progress=False, opener=OneFrame,
                                  tracking=False, blur="all")


def test_recordings_draw_a_face_not_judged_yet_grey_as_the_live_view_does() -> None:
    import dataclasses

    from faceapp.media.overlay import KNOWN_COLOUR, POOR_VIEW_COLOUR, UNKNOWN_COLOUR

    image = np.zeros((200, 300, 3), np.uint8)
    result = _result(((20, 60, 60, 60), None), ((120, 60, 60, 60), None), ((210, 60, 60, 60), "Ada"))
    poor = dataclasses.replace(result.faces[0], judged=False)
    out = render_output(image, dataclasses.replace(result, faces=(poor, *result.faces[1:])))
    # The boxes' left edges (x = 20, 120, 210), halfway down.
    assert tuple(out[90, 20]) == POOR_VIEW_COLOUR and tuple(out[90, 120]) == UNKNOWN_COLOUR and tuple(out[90, 210]) == KNOWN_COLOUR
