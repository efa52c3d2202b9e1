"""Reading and writing images with clear errors and bounded memory.

An image is refused by the size its header declares, before any pixel is decoded (a
629-byte JPEG may declare 30000x30000 pixels): :data:`MAX_PIXELS` pixels at most (about
300 MB decoded), and OpenCV's own decoder is capped the same way. Only regular files are
read (a FIFO would block). Writes go to a temporary file renamed into place.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from faceapp.errors import FaceAppError, ImageReadError
from faceapp.files import AtomicOutput, check_input_file, os_error_line

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
MAX_IMAGE_BYTES = 200 * 1024 * 1024
MAX_PIXELS = 100_000_000
# OpenCV reads this once, at its first decode: its decoder refuses larger images itself.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))


def declared_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` as the image's header declares it (Pillow reads the header
    only), or None when the header cannot be read (OpenCV then decides)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return None
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # we judge the size ourselves, without Pillow's warning
    try:
        with Image.open(io.BytesIO(raw)) as image:
            return int(image.size[0]), int(image.size[1])
    except Exception:  # noqa: BLE001 -- any unreadable header: let OpenCV judge the data
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as BGR uint8 ``(H, W, 3)`` (EXIF orientation applied; grey and
    alpha images converted). Raises ImageReadError with a one-line reason."""

    try:
        path = check_input_file(path, "image")
    except FaceAppError as error:
        raise ImageReadError(str(error)) from None
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageReadError(f"{path}: file too large to be an image we accept ({size} bytes)")
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read ({os_error_line(error)})") from None
    return decode_image(data, str(path))


def decode_image(data: bytes | np.ndarray, label: str = "image") -> np.ndarray:
    """Decode encoded image bytes to BGR uint8 ``(H, W, 3)``."""
    import cv2

    buffer = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buffer.size == 0:
        raise ImageReadError(f"{label}: empty file")
    if _png_is_truncated(buffer):
        raise ImageReadError(f"{label}: damaged or truncated PNG")
    declared = declared_size(buffer)
    if declared is not None and declared[0] * declared[1] > MAX_PIXELS:
        raise ImageReadError(f"{label}: image too large ({declared[0]}x{declared[1]} pixels; at most {MAX_PIXELS:,} are read)")
    if _png_is_damaged(buffer):
        raise ImageReadError(f"{label}: damaged PNG (a chunk's checksum does not match)")
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


def _png_is_damaged(buffer: np.ndarray) -> bool:
    """A PNG whose chunk checksums do not match (checked by Pillow, silently, before
    libpng would print its own error line on the way to refusing it)."""
    if bytes(buffer[:8]) != _PNG_SIGNATURE:
        return False
    from PIL import Image

    try:
        with Image.open(io.BytesIO(buffer.tobytes())) as image:
            image.verify()
    except Exception:  # noqa: BLE001 - any complaint of Pillow's means a damaged file
        return True
    return False


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
    with AtomicOutput(path, "wb", what="image") as handle:
        handle.write(buffer.tobytes())
