"""Frame sources: parsing ``--source``, image folders, video files (synthetic, no models)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from faceapp.errors import SourceError
from faceapp.media.sources import FOLDER_FPS, FolderSource, SourceSpec, VideoCaptureSource, open_source


def write_video(path, frames: int = 6, size=(64, 48), fps: float = 10.0):
    """A small MJPG video whose frame i is a flat grey of level 20 * i."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def write_png(path, level: int, size=(40, 30)):
    import cv2

    assert cv2.imwrite(str(path), np.full((size[1], size[0], 3), level, np.uint8))
    return path


# --------------------------------------------------------------------------- SourceSpec
@pytest.mark.parametrize("text, kind, value", [("0", "webcam", "0"), (" 2 ", "webcam", "2"), (1, "webcam", "1")])
def test_webcam_index(text, kind, value):
    spec = SourceSpec.parse(text)
    assert (spec.kind, spec.value) == (kind, value)
    assert spec.is_live and str(spec) == f"webcam {value}"


@pytest.mark.parametrize("url", ["rtsp://camera.local:554/stream", "http://example.com/video.mjpg"])
def test_stream_url(url):
    spec = SourceSpec.parse(url)
    assert (spec.kind, spec.value) == ("url", url) and spec.is_live and str(spec) == url


def test_folder_and_file(tmp_path):
    video = write_video(tmp_path / "clip.avi")
    assert SourceSpec.parse(str(tmp_path)) == SourceSpec("folder", str(tmp_path))
    spec = SourceSpec.parse(str(video))
    assert spec == SourceSpec("file", str(video)) and not spec.is_live and str(spec) == str(video)


@pytest.mark.parametrize("text", ["", "   ", "/no/such/file.mp4", "-1"])
def test_missing_or_empty_is_a_source_error(text):
    with pytest.raises(SourceError):
        SourceSpec.parse(text)


# --------------------------------------------------------------------------- folders
def test_folder_plays_images_in_name_order_and_skips_bad_ones(tmp_path, caplog):
    write_png(tmp_path / "b.png", 100)
    write_png(tmp_path / "a.png", 50, size=(20, 10))
    (tmp_path / "c.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    (tmp_path / "sub.png").mkdir()  # a folder with an image suffix is ignored too
    with caplog.at_level(logging.WARNING, logger="faceapp.media.sources"), open_source(str(tmp_path)) as source:
        assert isinstance(source, FolderSource)
        assert source.len_hint == 3 and source.fps == FOLDER_FPS
        frames = list(source)
    assert [f.label for f in frames] == ["a.png", "b.png"]
    assert [f.index for f in frames] == [0, 1]
    assert frames[0].image.shape == (10, 20, 3) and frames[1].image[0, 0, 0] == 100
    assert frames[1].time_s == pytest.approx(1 / FOLDER_FPS)
    assert any("c.jpg" in r.getMessage() for r in caplog.records)


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))


# --------------------------------------------------------------------------- video files
def test_video_file_frames(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=6, fps=10.0)
    with open_source(str(video)) as source:
        assert isinstance(source, VideoCaptureSource)
        assert source.fps == pytest.approx(10.0) and source.len_hint == 6
        frames = list(source)
    assert [f.index for f in frames] == list(range(6))
    assert [f.time_s for f in frames] == pytest.approx([i / 10 for i in range(6)])
    for i, frame in enumerate(frames):
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        assert abs(int(frame.image.mean()) - 20 * i) <= 3  # MJPG is lossy


def test_fixture_video_has_every_frame(fixture_video):
    with open_source(fixture_video.path) as source:
        count = sum(1 for _ in source)
    assert count == fixture_video.frame_count == len(fixture_video.people_per_frame)


@pytest.mark.parametrize(
    "name, content",
    [("empty.mp4", b""), ("fake.mp4", b"not a video at all" * 50), ("fake.jpg", b"not a jpeg at all" * 50)],
)
def test_a_file_that_is_not_a_video(tmp_path, name, content):
    """FFmpeg refuses some of these at once and "opens" others (fake.jpg) but yields no frame."""
    fake = tmp_path / name
    fake.write_bytes(content)
    with pytest.raises(SourceError, match=name):
        open_source(str(fake))


def test_a_camera_that_is_not_there():
    with pytest.raises(SourceError, match="webcam 97"):
        open_source("97")


def test_a_still_image_plays_as_one_frame(tmp_path):
    still = write_png(tmp_path / "still.png", 77)
    with open_source(str(still)) as source:
        frames = list(source)
    assert len(frames) == 1 and frames[0].image[0, 0, 0] == 77
