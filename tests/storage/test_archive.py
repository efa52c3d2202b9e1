"""Tests for faceapp.storage.archive: export, import, and hostile archives (synthetic unit vectors, no models)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from faceapp.errors import (
    FaceAppError,
    GalleryError,
    ModelMismatchError,
    UnknownPersonError,
)
from faceapp.storage import archive
from faceapp.storage.archive import ImportSummary, export_gallery, import_gallery
from faceapp.storage.gallery import Gallery, NewTemplate

from .gallery_data import DIM, MODEL, state, tmpl

# --------------------------------------------------------------------------- archive


def test_export_import_round_trip(filled: Gallery, tmp_path: Path) -> None:
    filled.remove_template(filled.templates("alice")[0].id)  # a person with 0 templates
    out = tmp_path / "out" / "export.zip"
    assert export_gallery(filled, out) == out
    assert [p.name for p in out.parent.iterdir()] == ["export.zip"]  # no temp file left
    with Gallery(tmp_path / "new.db") as g2:
        summary = import_gallery(g2, out)
        assert summary == ImportSummary(people_added=3, people_merged=0, people_skipped=0, templates_added=5)
        src_people, dst_people = filled.people(), g2.people()
        assert [(p.name, p.created_at, p.template_count) for p in src_people] == [
            (p.name, p.created_at, p.template_count) for p in dst_people
        ]
        for p in src_people:
            a, b = filled.templates(p.name), g2.templates(p.name)
            assert [
                (t.embedding.tobytes(), t.model_id, t.quality, t.thumbnail, t.source, t.created_at) for t in a
            ] == [
                (t.embedding.tobytes(), t.model_id, t.quality, t.thumbnail, t.source, t.created_at) for t in b
            ]
        np.testing.assert_array_equal(filled.matrix(MODEL).embeddings, g2.matrix(MODEL).embeddings)


def test_manifest_contents(filled: Gallery, tmp_path: Path) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    with zipfile.ZipFile(out) as zf:
        m = json.loads(zf.read("manifest.json"))
        assert (m["format"], m["version"], m["model_id"], m["dim"]) == ("faceapp-gallery", 3, MODEL, DIM)
        assert [p["name"] for p in m["people"]] == ["alice", "Bob", "Carol"]
        bob = m["people"][1]["templates"]
        assert bob[0]["thumbnail"].endswith(".png") and bob[1]["thumbnail"] is None
        assert m["people"][0]["templates"][0]["thumbnail"].endswith(".jpg")
        arr = np.load(io.BytesIO(zf.read(bob[0]["embedding_file"])), allow_pickle=False)
        assert arr.dtype == np.float32 and arr.shape == (2, DIM)


def test_export_empty_gallery(gallery: Gallery, tmp_path: Path) -> None:
    out = export_gallery(gallery, tmp_path / "e.zip")
    with Gallery(tmp_path / "new.db") as g2:
        assert import_gallery(g2, out) == ImportSummary(0, 0, 0, 0)
        assert g2.people() == []


def test_failed_export_leaves_no_file(
    filled: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(GalleryError, match="no space left"):
        export_gallery(filled, tmp_path / "e.zip")
    assert not (tmp_path / "e.zip").exists()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_failed_export_keeps_previous_file(
    filled: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    old = out.read_bytes()
    filled.add_person("Newcomer", [tmpl()])

    def boom(*a, **k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(GalleryError, match="cannot write"):
        export_gallery(filled, out)
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("g.db")) == ["e.zip"]


def test_import_on_conflict(filled: Gallery, tmp_path: Path) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    with Gallery(tmp_path / "other.db") as g2:
        g2.add_person("Bob", [tmpl()])
        g2.add_person("Dave", [tmpl()])
        before = state(g2)
        with pytest.raises(GalleryError, match="Bob"):
            import_gallery(g2, out)
        with pytest.raises(GalleryError, match="Bob"):
            import_gallery(g2, out, on_conflict="error")
        assert state(g2) == before

        s = import_gallery(g2, out, on_conflict="skip")
        assert s == ImportSummary(people_added=2, people_merged=0, people_skipped=1, templates_added=4)
        assert g2.person("Bob").template_count == 1
        assert [p.name for p in g2.people()] == ["alice", "Bob", "Carol", "Dave"]

        s = import_gallery(g2, out, on_conflict="merge")  # templates already there are not duplicated
        assert s == ImportSummary(people_added=0, people_merged=3, people_skipped=0, templates_added=2)
        assert g2.person("Bob").template_count == 3
        assert g2.person("Carol").template_count == 3
        with pytest.raises(GalleryError):
            import_gallery(g2, out, on_conflict="overwrite")  # type: ignore[arg-type]


def test_import_model_mismatch(filled: Gallery, tmp_path: Path) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    with Gallery(tmp_path / "other.db") as g2:
        g2.add_person("Zed", [tmpl(model="other-model")])
        before = state(g2)
        with pytest.raises(ModelMismatchError, match="other-model"):
            import_gallery(g2, out, on_conflict="merge")
        assert state(g2) == before


# ----- bad archives: each must be refused with the target gallery unchanged


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _mutate_manifest(members: dict[str, bytes], fn) -> dict[str, bytes]:
    m = json.loads(members["manifest.json"])
    fn(m)
    return {**members, "manifest.json": json.dumps(m).encode()}


def _first_npy(members: dict[str, bytes]) -> str:
    return json.loads(members["manifest.json"])["people"][1]["templates"][0]["embedding_file"]  # Bob: 2 rows


def _set(m: dict, key: str, value) -> None:
    m[key] = value


def _bad_archives(members: dict[str, bytes]) -> dict[str, dict[str, bytes] | bytes]:
    npy = _first_npy(members)
    bob = np.load(io.BytesIO(members[npy]))
    nan = bob.copy()
    nan[0, 0] = np.nan
    return {
        "not-a-zip": np.random.default_rng(0).bytes(2000),
        "empty-file": b"",
        "missing-manifest": {k: v for k, v in members.items() if k != "manifest.json"},
        "manifest-not-json": {**members, "manifest.json": b"{not json"},
        "manifest-not-utf8": {**members, "manifest.json": b"\xff\xfe\x00"},
        "manifest-is-list": {**members, "manifest.json": b"[]"},
        "people-not-list": _mutate_manifest(members, lambda m: _set(m, "people", {})),
        "person-missing-name": _mutate_manifest(members, lambda m: m["people"][0].pop("name")),
        "template-missing-quality": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].pop("quality")
        ),
        "quality-nan": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(quality=float("nan"))
        ),
        "quality-string": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(quality="high")
        ),
        "bad-person-name": _mutate_manifest(members, lambda m: m["people"][0].update(name="a\nb")),
        "duplicate-names": _mutate_manifest(members, lambda m: m["people"][2].update(name="Bob")),
        "duplicate-template-ids": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][1].update(id=m["people"][1]["templates"][0]["id"])
        ),
        "wrong-format": _mutate_manifest(members, lambda m: _set(m, "format", "something-else")),
        "version-4": _mutate_manifest(members, lambda m: _set(m, "version", 4)),
        "memory-not-an-object": _mutate_manifest(members, lambda m: _set(m, "memory", [1, 2])),
        "memory-no-embeddings": _mutate_manifest(members, lambda m: _set(m, "memory", {"visitors": [], "sightings": [
            {"person": None, "visitor": None, "source": "x", "first_seen": 1.8e9, "last_seen": 1.8e9, "frames": 1,
             "best_similarity": 0.2, "quality": 0.5, "model_id": MODEL, "embedding_rows": [0, 1], "thumbnail": None}]})),
        "memory-unknown-visitor": _mutate_manifest(members, lambda m: _set(m, "memory", {"visitors": [], "sightings": [
            {"visitor": 7, "embedding_rows": [0, 1]}]})),
        "version-string": _mutate_manifest(members, lambda m: _set(m, "version", "1")),
        "wrong-dim": _mutate_manifest(members, lambda m: _set(m, "dim", DIM + 1)),
        "missing-thumbnail": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(thumbnail="thumbnails/nope.png")
        ),
        "traversal-ref": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(thumbnail="../../etc/passwd")
        ),
        "traversal-member": {**members, "../evil.txt": b"x"},
        "traversal-nested": {**members, "thumbnails/../../evil.txt": b"x"},
        "absolute-member": {**members, "/etc/evil": b"x"},
        "drive-member": {**members, "C:/evil": b"x"},
        "backslash-member": {**members, "..\\evil": b"x"},
        "npy-float64": {**members, npy: _npy(bob.astype(np.float64))},
        "npy-1d": {**members, npy: _npy(bob[0])},
        "npy-wrong-dim": {**members, npy: _npy(np.zeros((2, DIM + 1), np.float32))},
        "npy-wrong-count": {**members, npy: _npy(np.concatenate([bob, bob]))},
        "npy-too-few": {**members, npy: _npy(bob[:1])},
        "npy-pickle": {**members, npy: _npy(np.array([{"evil": 1}, None], dtype=object))},
        "npy-garbage": {**members, npy: b"\x93NUMPY garbage"},
        "npy-nan": {**members, npy: _npy(nan)},
        "npy-zero-row": {**members, npy: _npy(np.zeros_like(bob))},
        "thumbnail-not-image": {
            **members,
            json.loads(members["manifest.json"])["people"][1]["templates"][0]["thumbnail"]: b"<html>",
        },
    }


def test_bad_archive_cases_refused(filled: Gallery, tmp_path: Path) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    members = _members(good)
    with Gallery(tmp_path / "target.db") as target:
        target.add_person("Existing", [tmpl()])
        before = state(target)
        for case, content in _bad_archives(members).items():
            path = tmp_path / f"{case}.zip"
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                _write_zip(path, content)
            for mode in ("error", "merge", "skip"):
                with pytest.raises(GalleryError) as info:
                    import_gallery(target, path, on_conflict=mode)  # type: ignore[arg-type]
                assert "\n" not in str(info.value), case
                assert state(target) == before, case
        # the untouched archive still imports fine
        assert import_gallery(target, good).people_added == 3


def test_missing_archive(gallery: Gallery, tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="no such file"):
        import_gallery(gallery, tmp_path / "missing.zip")


def _patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size a zip's central directory declares for ``member``."""
    buf = bytearray(data)
    pos = buf.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack_from("<H", buf, pos + 28)[0]
        if bytes(buf[pos + 46 : pos + 46 + name_len]) == member.encode():
            struct.pack_into("<I", buf, pos + 24, size)
            return bytes(buf)
        pos = buf.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"{member} not found")


def test_enormous_declared_size_refused(filled: Gallery, tmp_path: Path) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    npy = _first_npy(_members(good))
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_patch_declared_size(good.read_bytes(), npy, 0xFFFF0000))
    with Gallery(tmp_path / "t.db") as target:
        before = state(target)
        with pytest.raises(GalleryError, match="too large"):
            import_gallery(target, bomb)
        assert state(target) == before


def test_size_caps(filled: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    with Gallery(tmp_path / "t.db") as target:
        before = state(target)
        monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 100)
        with pytest.raises(GalleryError, match="too large"):
            import_gallery(target, good)
        monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1 << 30)
        monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 100)
        with pytest.raises(GalleryError, match="too large"):
            import_gallery(target, good)
        assert state(target) == before


def test_lying_small_declared_size_refused(filled: Gallery, tmp_path: Path) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    npy = _first_npy(_members(good))
    liar = tmp_path / "liar.zip"
    liar.write_bytes(_patch_declared_size(good.read_bytes(), npy, 10))
    with Gallery(tmp_path / "t.db") as target:
        before = state(target)
        with pytest.raises(GalleryError):
            import_gallery(target, liar)
        assert state(target) == before


def test_errors_are_faceapp_errors() -> None:
    assert issubclass(GalleryError, FaceAppError)
    assert issubclass(ModelMismatchError, GalleryError)
    assert issubclass(UnknownPersonError, GalleryError)


def test_merging_the_same_archive_twice_adds_no_duplicates(tmp_path):
    from faceapp.storage.archive import export_gallery, import_gallery

    source = Gallery(tmp_path / "a.sqlite3")
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(2, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source.add_person("ann", [NewTemplate(v, "m1") for v in vectors])
    export_gallery(source, tmp_path / "a.zip")
    target = Gallery(tmp_path / "b.sqlite3")
    import_gallery(target, tmp_path / "a.zip")
    summary = import_gallery(target, tmp_path / "a.zip", on_conflict="merge")
    assert summary.templates_added == 0
    assert target.person("ann").template_count == 2
    source.close()
    target.close()
