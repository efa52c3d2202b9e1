"""Frame sources: a webcam index, a video file, a stream URL or a folder of images.

Every source yields :class:`Frame` values (BGR uint8 ``(H, W, 3)`` images with their
index and time). Opening a source that does not work raises SourceError with a clear
line; no Qt here (the GUI wraps these in worker threads).
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from faceapp.errors import ImageReadError, SourceError
from faceapp.files import os_error_line
from faceapp.media.imageio import IMAGE_SUFFIXES, read_image

logger = logging.getLogger(__name__)

FOLDER_FPS = 1.0  # a folder of stills is played as one image per second
MAX_BAD_FRAMES = 30  # consecutive unusable frames before a source is declared broken
MAX_FRAME_PIXELS = 100_000_000


def usable_frame(image: object) -> np.ndarray | None:
    """``image`` as BGR uint8 (H, W, 3) if it can be one (grey and BGRA are converted),
    else None (wrong type, dtype or shape, empty, absurdly large)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        return None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or image.shape[0] * image.shape[1] > MAX_FRAME_PIXELS:
        return None
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        return None
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    import cv2

    code = cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_BGRA2BGR
    return cv2.cvtColor(np.ascontiguousarray(image), code)


@dataclass(frozen=True)
class Frame:
    index: int
    time_s: float
    image: np.ndarray = field(repr=False)
    label: str = ""  # the file name for folder sources


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` value. ``kind`` is webcam, file, url, folder or device (a
    camera's device file). FIFOs and sockets are refused: reading one would block."""

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
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            mode = None
        except OSError as error:
            raise SourceError(f"{text}: {os_error_line(error)}") from None
        if mode is None:
            raise SourceError(f"{text}: no such file or folder (sources are a webcam index, a video file, a stream URL or an image folder)")
        if stat.S_ISDIR(mode):
            return cls("folder", str(path))
        if stat.S_ISREG(mode):
            return cls("file", str(path))
        if stat.S_ISCHR(mode):  # a camera device such as /dev/video0
            return cls("device", str(path))
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file"
        raise SourceError(f"{text}: is {kind}, not a video file, an image folder or a camera")

    @property
    def is_live(self) -> bool:
        return self.kind in ("webcam", "url", "device")

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoCaptureSource(FrameSource):
    """A webcam, video file or stream through ``cv2.VideoCapture``."""

    def __init__(self, spec: SourceSpec, capture_size: tuple[int, int] | None = None):
        import cv2

        self.spec = spec
        target: int | str = int(spec.value) if spec.kind == "webcam" else spec.value
        self._capture = cv2.VideoCapture(target)
        if capture_size and spec.is_live and self._capture.isOpened():  # ask a camera for this size (it may pick the nearest)
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, capture_size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, capture_size[1])
        if not self._capture.isOpened():
            self._capture.release()
            what = {"webcam": "cannot open webcam", "url": "cannot open stream", "file": "cannot open video file",
                    "device": "cannot open camera device"}[spec.kind]
            raise SourceError(f"{what} {spec.value}" + (" (is a camera connected?)" if spec.kind == "webcam" else ""))
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 30.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.len_hint = count if spec.kind == "file" and count > 0 else None
        self._pending: np.ndarray | None = None
        if spec.kind == "file":  # FFmpeg "opens" any file; a video must yield a frame
            self._pending = self.read()
            if self._pending is None:
                self._capture.release()
                raise SourceError(f"cannot read video file {spec.value}: not a video, or damaged")

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end (or when the device stops answering)."""
        if self._pending is not None:
            image, self._pending = self._pending, None
            return image
        for _ in range(MAX_BAD_FRAMES):
            try:
                ok, image = self._capture.read()
            except Exception as error:  # noqa: BLE001  # cv2.error, or a driver failing mid-read
                raise SourceError(f"{self.spec}: reading a frame failed ({' '.join(str(error).split())})") from None
            if not ok or image is None:
                return None
            frame = usable_frame(image)
            if frame is not None:
                return frame
            logger.warning("%s: skipping an unusable frame (%s)", self.spec, _describe(image))
        raise SourceError(f"{self.spec}: the source returns only unusable frames (last: {_describe(image)})")

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


def _describe(image: object) -> str:
    if isinstance(image, np.ndarray):
        return f"array {image.shape} {image.dtype}"
    return type(image).__name__


def frames_with_timeout(source: FrameSource, timeout_s: float) -> Iterator[Frame]:
    """Iterate ``source`` but raise SourceError if no frame arrives within ``timeout_s``
    (a camera that stalls: ``cv2.VideoCapture.read`` can block forever).

    The source is read on a daemon thread; after a timeout that thread is abandoned (it
    ends when the blocked read returns) and the caller should close the source and may
    reopen it. Errors raised by the source are re-raised here.
    """
    if not timeout_s > 0:
        raise ValueError("timeout_s must be positive")
    slots: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def pump() -> None:
        try:
            for frame in source:
                while not stop.is_set():
                    try:
                        slots.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: object = done
        except BaseException as error:  # noqa: BLE001  # handed to the consumer
            item = error
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=pump, name="frame-reader", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = slots.get(timeout=timeout_s)
            except queue.Empty:
                raise SourceError(
                    f"{getattr(source, 'spec', 'the source')}: no frame for {timeout_s:g} s "
                    "(the camera stopped answering; check it and reopen it)"
                ) from None
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def open_source(source: str | int | SourceSpec, capture_size: tuple[int, int] | None = None) -> FrameSource:
    """Open a webcam index, video file, stream URL or image folder. ``capture_size``
    (width, height) is asked of a camera; files keep their own size."""
    spec = source if isinstance(source, SourceSpec) else SourceSpec.parse(source)
    if spec.kind == "folder":
        return FolderSource(spec)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own messages (AV_LOG_QUIET)
    return VideoCaptureSource(spec, capture_size)


def camera_names(limit: int = 10) -> dict[int, str]:
    """The cameras this machine names, by index (Linux: ``/sys/class/video4linux``), without
    opening any of them; empty where the system does not say."""
    names: dict[int, str] = {}
    root = Path("/sys/class/video4linux")
    if root.is_dir():
        for entry in sorted(root.glob("video*")):
            try:
                index = int(entry.name[len("video"):])
                names[index] = (entry / "name").read_text(encoding="utf-8", errors="replace").strip() or entry.name
            except (ValueError, OSError):
                continue
    return {index: name for index, name in sorted(names.items()) if index < limit}
