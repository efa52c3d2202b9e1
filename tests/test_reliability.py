"""Reliability: SIGKILL at random points, two writers, fuzzed inputs, failing sources and
models. The short CI versions of ``tools/stress.py`` (run that for the long loops)."""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from faceapp.errors import GalleryError, ModelError, SourceError
from faceapp.storage.archive import export_gallery, import_gallery
from faceapp.storage.gallery import Gallery, NewTemplate

REPO = Path(__file__).resolve().parents[1]


sys.path.insert(0, str(REPO / "tools"))  # the stress scripts import each other by name
import fuzz_inputs
import stress

# --------------------------------------------------------------------------- kill and concurrency


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_loop_leaves_old_or_new_state(tmp_path: Path) -> None:
    report = stress.kill_loop(8, seed=int(os.environ.get("FACEAPP_STRESS_SEED", "7")), workdir=tmp_path, log=print)
    print(report.describe())
    assert report.failures == []
    assert report.iterations == 8


def test_two_processes_on_one_gallery(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Gallery(path).close()
    added, busy = stress.concurrent_writers(path, writers=2, people_each=8)
    assert added + busy == 16
    assert added >= 8  # with a 2 s busy timeout nearly everything gets through


# --------------------------------------------------------------------------- fuzzing (small)


def test_fuzz_inputs_short() -> None:

    count = int(os.environ.get("FACEAPP_FUZZ_COUNT", "25"))
    report = fuzz_inputs.fuzz(count, seed=3, png_chunk_attack=True, log=print)
    print(report.describe())
    assert report.failures == []
    assert set(report.cases) == set(fuzz_inputs.TARGETS)  # archives, images, names, paths, hand-edited rows
    assert all(report.cases[target] >= count // 2 for target in fuzz_inputs.TARGETS)
    assert report.outcomes["archive:ok"] > 0


def _archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def _manifest(emb_file: str = "embeddings/0000.npy", thumb: str | None = None) -> bytes:
    return json.dumps({
        "format": "faceapp-gallery", "version": 1, "model_id": "m", "dim": 4, "created_at": 0,
        "people": [{"name": "A", "created_at": 0, "templates": [
            {"id": 1, "quality": 1, "source": "", "created_at": 0, "embedding_file": emb_file,
             "embedding_row": 0, "thumbnail": thumb}]}],
    }).encode()


def test_npy_header_declaring_a_huge_array_is_refused_without_allocating(tmp_path: Path) -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 4), }".ljust(117) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 16
    path = tmp_path / "huge.zip"
    path.write_bytes(_archive({"manifest.json": _manifest(), "embeddings/0000.npy": npy}))
    with Gallery(tmp_path / "g.db") as g, pytest.raises(GalleryError, match="header declares"):
        import_gallery(g, path)  # refused from the header, before numpy allocates anything


def test_many_large_thumbnails_are_refused_before_reading(tmp_path: Path) -> None:
    buf = io.BytesIO()
    emb = io.BytesIO()
    np.save(emb, np.ones((1, 4), "<f4"))
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", _manifest(thumb="thumbnails/big.jpg"))
        zf.writestr("embeddings/0000.npy", emb.getvalue())
        zf.writestr("thumbnails/big.jpg", b"\xff\xd8\xff" + bytes(8 << 20))
    path = tmp_path / "bomb.zip"
    path.write_bytes(buf.getvalue())
    with Gallery(tmp_path / "g.db") as g, pytest.raises(GalleryError, match="too large"):
        import_gallery(g, path)


@pytest.mark.parametrize("name", ["../evil.npy", "/etc/evil.npy", "a/../../evil.npy", "C:\\evil.npy"])
def test_path_traversal_member_names_are_refused(tmp_path: Path, name: str) -> None:
    emb = io.BytesIO()
    np.save(emb, np.ones((1, 4), "<f4"))
    path = tmp_path / "evil.zip"
    path.write_bytes(_archive({"manifest.json": _manifest(emb_file=name), name: emb.getvalue()}))
    with Gallery(tmp_path / "g.db") as g, pytest.raises(GalleryError, match="unsafe member name"):
        import_gallery(g, path)
    assert not (tmp_path.parent / "evil.npy").exists()


def test_png_with_huge_chunk_is_refused_before_decoding(monkeypatch) -> None:
    """A 70-byte PNG whose second chunk declares 2 GiB makes OpenCV 5 allocate ~4 GiB and
    spend ~15 s before failing: faceapp.media.imageio must refuse it without decoding."""
    import cv2

    from faceapp.media import imageio

    data = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    data[33:37] = b"\x7f\xff\xff\xff"

    def no_decoding(*args, **kwargs):
        raise AssertionError("the damaged PNG reached cv2.imdecode")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(imageio.ImageReadError, match="truncated PNG"):
        imageio.decode_image(bytes(data))


# --------------------------------------------------------------------------- failing sources


class FakeCapture:
    """Stands in for cv2.VideoCapture: plays a script of read() results."""

    script: ClassVar[list] = []

    def __init__(self, target) -> None:
        self.items = list(type(self).script)

    def isOpened(self) -> bool:
        return True

    def get(self, prop) -> float:
        return 0.0

    def read(self):
        if not self.items:
            return False, None
        item = self.items.pop(0)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str) and item == "stall":
            time.sleep(3)
            return False, None
        return (item is not None), item

    def release(self) -> None:
        pass


@pytest.fixture
def fake_camera(monkeypatch):
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)

    def play(*items):
        FakeCapture.script = list(items)
        from faceapp.media.sources import SourceSpec, VideoCaptureSource

        return VideoCaptureSource(SourceSpec("webcam", "0"))

    return play


def test_garbage_frames_are_skipped(fake_camera) -> None:
    good = np.zeros((4, 6, 3), np.uint8)
    source = fake_camera(np.zeros((4, 6, 3), np.float32), np.zeros((4,), np.uint8), "not an array",
                         np.zeros((0, 6, 3), np.uint8), good, np.zeros((4, 6), np.uint8),
                         np.zeros((4, 6, 4), np.uint8), np.zeros((4, 6, 2), np.uint8))
    frames = [f.image for f in source]
    assert [f.shape for f in frames] == [(4, 6, 3)] * 3
    assert all(f.dtype == np.uint8 for f in frames)


def test_only_garbage_is_a_clear_error(fake_camera) -> None:
    from faceapp.media.sources import MAX_BAD_FRAMES

    source = fake_camera(*([np.zeros((2, 2), np.int64)] * (MAX_BAD_FRAMES + 1)))
    with pytest.raises(SourceError, match="unusable frames"):
        list(source)


def test_disconnect_ends_or_errors_cleanly(fake_camera) -> None:
    good = np.zeros((4, 6, 3), np.uint8)
    assert len(list(fake_camera(good, good, None, good))) == 2  # read() failing = end of stream
    import cv2

    source = fake_camera(good, cv2.error("device unplugged"))
    with pytest.raises(SourceError, match="reading a frame failed"):
        list(source)


def test_stalled_camera_times_out(fake_camera) -> None:
    from faceapp.media.sources import frames_with_timeout

    good = np.zeros((4, 6, 3), np.uint8)
    source = fake_camera(good, "stall", good)
    got = []
    with pytest.raises(SourceError, match="no frame for 0.3 s"):  # the stall ends in an error, not a hang
        for frame in frames_with_timeout(source, 0.3):
            got.append(frame)  # noqa: PERF402  # frames seen before the stall
    assert len(got) == 1
    source.close()
    # errors from the source still surface through the timeout wrapper
    with pytest.raises(SourceError, match="unusable"):
        list(frames_with_timeout(fake_camera(*([np.zeros((2, 2), np.int64)] * 40)), 1.0))


# --------------------------------------------------------------------------- damaged models


def _copy_models(tmp_path: Path) -> Path:
    from conftest import copy_model_dir

    return copy_model_dir(tmp_path / "models")


def test_truncated_embedding_weights_are_a_model_error(tmp_path: Path) -> None:
    from faceapp.embedding.modelcard import load_card
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    directory = _copy_models(tmp_path)
    weights = load_card(directory).weights
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    with pytest.raises(ModelError, match="damaged|cannot be loaded"):
        Recognizer.create(PipelineConfig(model_dir=directory, device="cpu"))


def test_truncated_detector_is_a_model_error(tmp_path: Path) -> None:
    from faceapp.vision.detection import DetectorConfig, YuNetDetector, yunet_path

    directory = _copy_models(tmp_path)
    path = yunet_path(directory)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError):
        YuNetDetector(path, DetectorConfig())


def test_truncated_model_card_is_a_model_error(tmp_path: Path) -> None:
    from faceapp.embedding.modelcard import DEFAULT_CARD, load_card

    directory = _copy_models(tmp_path)
    card = directory / DEFAULT_CARD
    card.write_bytes(card.read_bytes()[:40])
    with pytest.raises(ModelError):
        load_card(directory)


def test_export_never_leaves_a_partial_file(tmp_path: Path, monkeypatch) -> None:
    with Gallery(tmp_path / "g.db") as g:
        g.add_person("A", [NewTemplate(np.full(4, 0.5, np.float32), "m")])
        from faceapp.storage import archive

        def boom(*a, **k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(archive.os, "replace", boom)
        with pytest.raises(GalleryError, match="no space left"):
            export_gallery(g, tmp_path / "out.zip")
    assert list(tmp_path.glob("*.zip*")) == []
