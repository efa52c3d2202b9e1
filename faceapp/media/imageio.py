"""Reading and writing images with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceapp.errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
MAX_IMAGE_BYTES = 200 * 1024 * 1024
MAX_PIXELS = 100_000_000


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as BGR uint8 ``(H, W, 3)`` (EXIF orientation applied; grey and
    alpha images converted). Raises ImageReadError with a one-line reason."""

    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageReadError(f"{path}: file too large to be an image we accept ({size} bytes)")
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read ({error.strerror or error})") from None
    return decode_image(data, str(path))


def decode_image(data: bytes | np.ndarray, label: str = "image") -> np.ndarray:
    """Decode encoded image bytes to BGR uint8 ``(H, W, 3)``."""
    import cv2

    buffer = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buffer.size == 0:
        raise ImageReadError(f"{label}: empty file")
    if _png_is_truncated(buffer):
        raise ImageReadError(f"{label}: damaged or truncated PNG")
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageReadError(f"{label}: not an image OpenCV can read")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageReadError(f"{label}: image too large ({image.shape[1]}x{image.shape[0]})")
    return image


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_is_truncated(buffer: np.ndarray) -> bool:
    """True if a PNG declares a chunk longer than the data that is left.

    OpenCV 5's PNG reader allocates each chunk's declared length before reading it: a
    70-byte file declaring a 2 GiB chunk costs ~4 GiB of memory and ~15 s. This walk over
    the chunk headers (no decoding, no copy) refuses such files first.
    """
    data = memoryview(np.ascontiguousarray(buffer, dtype=np.uint8).reshape(-1))
    if bytes(data[:8]) != _PNG_SIGNATURE:
        return False
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if bytes(data[pos + 4 : pos + 8]) == b"IEND":
            return False
        pos += 12 + length  # length, type, data, CRC
        if pos > len(data):
            return True
    return False


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """BGR uint8 image -> JPEG bytes."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageReadError("could not encode image as JPEG")
    return buffer.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a BGR uint8 image; the format follows the suffix. Atomic (temp + rename)."""
    import cv2

    path = Path(path)
    suffix = path.suffix.lower() or ".png"
    try:
        ok, buffer = cv2.imencode(suffix, image)
    except cv2.error:  # no encoder for this suffix
        ok = False
    if not ok:
        raise ImageReadError(f"{path}: cannot encode an image as {suffix}")
    temporary = path.with_name(path.name + ".tmp")
    try:
        buffer.tofile(temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ImageReadError(f"{path}: cannot write ({error.strerror or error})") from None
