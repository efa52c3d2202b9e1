"""Recognition over a whole source (file, folder, stream, webcam): annotated video and
per-face JSON-lines events. Used by ``faceapp recognize``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from faceapp.errors import SourceError
from faceapp.files import AtomicOutput, OutputClashError, check_output_path, os_error_line, same_file
from faceapp.media.reader import DEFAULT_STALL_TIMEOUT_S, Backoff, Opener, Reader, SourceState, SourceStatus
from faceapp.media.sources import SourceSpec, open_source
from faceapp.recognition.pipeline import Recognizer
from faceapp.types import FrameResult

if TYPE_CHECKING:
    from faceapp.recognition.memory import Memory

logger = logging.getLogger(__name__)


@dataclass
class RecognitionSummary:
    frames: int = 0
    faces: int = 0
    names: Counter = field(default_factory=Counter)
    out: str | None = None
    events: str | None = None
    reconnects: int = 0
    interrupted: bool = False
    sightings: int | None = None  # sightings remembered (None: not kept)

    def describe(self) -> str:
        seen = ", ".join(f"{name} ({count} frames)" for name, count in self.names.most_common()) or "nobody known"
        text = f"{self.frames} frame(s), {self.faces} face(s); seen: {seen}"
        if self.out:
            text += f"; video: {self.out}"
        if self.events:
            text += f"; events: {self.events}"
        if self.sightings is not None:
            text += f"; {self.sightings} sighting(s) remembered"
        if self.interrupted:
            text += "; stopped by Ctrl+C"
        if self.reconnects:
            text += f"; the source was reopened {self.reconnects} time(s)"
        return text


def event_lines(frame_index: int, time_s: float, result: FrameResult):
    """One dict per face: frame, time_s, box [x, y, w, h], name (or None), visitor (an
    unknown's "Unknown #N" id, or None), similarity."""
    for face in result.faces:
        data = face.to_json()
        yield {
            "frame": frame_index, "time_s": round(time_s, 3), "track_id": data["track_id"],
            "box": data["box"], "name": data["name"], "visitor": data["visitor"], "similarity": data["similarity"],
        }


def letterbox(image, size: tuple[int, int]):
    """Fit a BGR image inside ``size`` (width, height), keeping its aspect, black bars."""
    import cv2
    import numpy as np

    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


class _VideoWriter:
    """Writes the annotated video to a temporary file beside ``path``, opened lazily on
    the first frame (its size); :meth:`commit` renames it into place, :meth:`discard`
    removes it, so a failed run never leaves a partial video or truncates an old one."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps, self._writer = Path(path), fps, None
        self._temporary = self.path.with_name(f".{self.path.stem[:80]}.{os.getpid()}.partial{self.path.suffix}")

    def write(self, image) -> None:
        import cv2

        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
            self._writer = cv2.VideoWriter(str(self._temporary), fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self._writer.isOpened():
                self._writer = None
                writable = os.access(self.path.parent, os.W_OK)
                raise SourceError(f"cannot write the video {self.path}: "
                                  + ("OpenCV has no writer for this kind of file (use .mp4 or .avi)" if writable else
                                     "its folder is not writable"))
            self._size = (image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self._size:  # e.g. a folder of photos
            image = letterbox(image, self._size)
        self._writer.write(image)

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def commit(self) -> None:
        self._release()
        if self._temporary.exists():
            try:
                os.replace(self._temporary, self.path)
            except OSError as error:
                self._temporary.unlink(missing_ok=True)
                raise SourceError(f"cannot write the video {self.path}: {os_error_line(error)}") from None

    def discard(self) -> None:
        self._release()
        try:
            self._temporary.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove the partial video %s", self._temporary)


def run_recognition(
    recognizer: Recognizer,
    source: str,
    out: str | None = None,
    events: str | None = None,
    max_frames: int | None = None,
    show_progress: bool = True,
    tracking: bool = True,
    blur: str | None = None,
    *,
    opener: Opener | None = None,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    max_reconnects: int | None = None,
    backoff: Backoff | None = None,
    protected: Iterable[tuple[str, str | os.PathLike]] = (),
    memory: Memory | None = None,
) -> RecognitionSummary:
    """Recognise every frame of ``source``; write the annotated video and the events.

    The source is read by the same :class:`~faceapp.media.reader.Reader` as the desktop
    app's: a live source (webcam, stream) silent for ``stall_timeout_s`` or failing is
    reopened with back-off (for ever, or ``max_reconnects`` times in a row; each attempt
    is logged in one line); a source that cannot be opened raises SourceError. ``opener``
    replaces :func:`~faceapp.media.sources.open_source` (tests).

    Outputs are written to temporary files renamed into place at the end (Ctrl+C ends a
    live run normally and keeps what was recorded; an error leaves no partial file and
    never truncates an existing one). ``out`` and ``events`` must not be the input, each
    other, or any of ``protected`` (``(description, path)``: the gallery, model files).

    With ``tracking`` (videos, streams, webcams), faces keep a track id and a voted name
    across frames and are re-embedded only when needed
    (:class:`faceapp.recognition.live.Tracking`); without it, and always for a folder of
    images, every face of every frame is recognised on its own.

    ``memory`` (a :class:`~faceapp.recognition.memory.Memory`) remembers every track as
    a sighting (every face of a folder's photo, with the photo's path) and tells unknown
    visitors; it is closed (everything written) at the end.

    ``blur`` ("unknown", "all", or None/"none") blurs those faces in the ``out`` video
    (:func:`faceapp.media.privacy.blur_faces`). When the recognizer's gallery is in
    embeddings-only mode, ``out`` is refused (PrivacyError) unless ``blur="all"``.
    """
    from faceapp.media.privacy import PrivacyError, PrivacyPolicy, check_image_write, normalize_blur, render_output
    from faceapp.recognition.live import Tracking

    try:
        blur = normalize_blur(blur)
    except ValueError as error:
        raise PrivacyError(str(error)) from None
    if out:
        check_image_write(PrivacyPolicy.for_gallery(getattr(recognizer, "gallery", None), blur), f"the video {out}")
    spec = SourceSpec.parse(source)
    guarded = list(protected)
    if spec.kind in ("file", "device"):
        guarded.append(("the input video", spec.value))
    elif spec.kind == "folder":  # each of the folder's photos is an input
        from faceapp.media.sources import IMAGE_SUFFIXES

        guarded += [("an input photo", p) for p in Path(spec.value).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    for path, what in ((out, "video"), (events, "event log")):
        if path is not None:
            check_output_path(path, guarded, what)
            if not Path(path).expanduser().resolve().parent.is_dir():
                raise SourceError(f"cannot write {path}: its folder does not exist")
    if out and events and same_file(out, events):
        raise OutputClashError(f"--out and --events name the same file ({out}); choose two files")
    summary = RecognitionSummary(out=out, events=events)

    def report(status: SourceStatus) -> None:
        if status.state is SourceState.RECONNECTING:
            logger.warning("%s", status.message)

    reader = Reader(
        opener or (lambda: open_source(spec)), description=str(spec), live=spec.is_live, backoff=backoff,
        stall_timeout_s=stall_timeout_s, max_reconnects=max_reconnects, on_status=report, raise_errors=True,
    )
    # The photos of a folder are unrelated stills: each is recognised on its own.
    tracking_stage = Tracking() if tracking and spec.kind != "folder" else None
    writer: _VideoWriter | None = None
    progress = None
    frames = reader.frames()
    with contextlib.ExitStack() as outputs:
        events_file = outputs.enter_context(AtomicOutput(events, "w", encoding="utf-8", what="event log")) if events else None
        try:
            for frame in frames:
                if max_frames is not None and summary.frames >= max_frames:
                    break
                if summary.frames == 0:  # the source is open: its rate and length are known
                    writer = _VideoWriter(out, reader.fps or 30.0) if out else None
                    if show_progress:
                        from tqdm import tqdm

                        hint = reader.len_hint
                        total = hint if max_frames is None else min(max_frames, hint or max_frames)
                        progress = tqdm(total=total, unit="frame", desc="recognising", leave=False)
                result = recognizer.process(frame.image, tracking_stage, video=spec.kind != "folder")
                if memory is not None:
                    photo = os.path.abspath(os.path.join(spec.value, frame.label)) if spec.kind == "folder" else None
                    result = memory.observe(result, frame.index, file=photo)
                summary.frames += 1
                summary.faces += len(result.faces)
                summary.names.update(f.match.name for f in result.faces if f.match.name)
                if events_file:
                    for line in event_lines(frame.index, frame.time_s, result):
                        events_file.write(json.dumps(line, ensure_ascii=False) + "\n")
                if writer:
                    writer.write(render_output(frame.image, result, blur))
                if progress:
                    progress.update(1)
        except KeyboardInterrupt:  # Ctrl+C ends a live recording: keep what was recorded
            summary.interrupted = True
        except BaseException:
            if writer:
                writer.discard()
            raise
        finally:
            frames.close()
            summary.reconnects = reader.reconnects
            if memory is not None:
                memory.close()
                summary.sightings = memory.closed_sightings if memory.keep else None
            if progress:
                progress.close()
        if writer:
            writer.commit()
    return summary
