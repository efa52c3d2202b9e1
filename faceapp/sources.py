"""Frame sources: a webcam index, a video file, a stream URL or a folder of images.

Every source yields :class:`Frame` values (BGR uint8 ``(H, W, 3)`` images with their
index and time). Opening a source that does not work raises SourceError with a clear
line; no Qt here (the GUI wraps these in worker threads).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceapp.errors import ImageReadError, SourceError
from faceapp.imageio import IMAGE_SUFFIXES, read_image

logger = logging.getLogger(__name__)

FOLDER_FPS = 1.0  # a folder of stills is played as one image per second


@dataclass(frozen=True)
class Frame:
    index: int
    time_s: float
    image: np.ndarray = field(repr=False)
    label: str = ""  # the file name for folder sources


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value. ``kind`` is webcam, file, url or folder."""

    kind: str
    value: str

    @classmethod
    def parse(cls, text: str | int) -> SourceSpec:
        text = str(text).strip()
        if not text:
            raise SourceError("empty source: give a webcam index, a video file, a stream URL or an image folder")
        if text.isdigit():
            return cls("webcam", text)
        if "://" in text:
            return cls("url", text)
        path = Path(text).expanduser()
        if path.is_dir():
            return cls("folder", str(path))
        if path.is_file():
            return cls("file", str(path))
        raise SourceError(f"{text}: no such file or folder (sources are a webcam index, a video file, a stream URL or an image folder)")

    @property
    def is_live(self) -> bool:
        return self.kind in ("webcam", "url")

    def __str__(self) -> str:
        return f"webcam {self.value}" if self.kind == "webcam" else self.value


class FrameSource:
    """Base class: iterate to get frames; ``len_hint`` is the frame count if known."""

    fps: float = 0.0
    len_hint: int | None = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoCaptureSource(FrameSource):
    """A webcam, video file or stream through ``cv2.VideoCapture``."""

    def __init__(self, spec: SourceSpec):
        import cv2

        self.spec = spec
        target: int | str = int(spec.value) if spec.kind == "webcam" else spec.value
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            self._capture.release()
            what = {"webcam": "cannot open webcam", "url": "cannot open stream", "file": "cannot open video file"}[spec.kind]
            raise SourceError(f"{what} {spec.value}" + (" (is a camera connected?)" if spec.kind == "webcam" else ""))
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 30.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.len_hint = count if spec.kind == "file" and count > 0 else None

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end (or when the device stops answering)."""
        ok, image = self._capture.read()
        if not ok or image is None:
            return None
        if image.ndim == 2:
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return image

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            image = self.read()
            if image is None:
                return
            yield Frame(index, index / self.fps, image)
            index += 1

    def close(self) -> None:
        self._capture.release()


class FolderSource(FrameSource):
    """The images of a folder, in name order; unreadable files are skipped with a warning."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        folder = Path(spec.value)
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise SourceError(f"{folder}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
        self.fps = FOLDER_FPS
        self.len_hint = len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path)
            except ImageReadError as error:
                logger.warning("skipping %s", error)
                continue
            yield Frame(index, index / self.fps, image, path.name)


def open_source(source: str | int | SourceSpec) -> FrameSource:
    """Open a webcam index, video file, stream URL or image folder."""
    spec = source if isinstance(source, SourceSpec) else SourceSpec.parse(source)
    if spec.kind == "folder":
        return FolderSource(spec)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    return VideoCaptureSource(spec)
