"""A test and benchmark video made from the fixture photos, with its ground truth.

The video (640x480 by default) plays scenes: empty frames, one person panning across
the frame, the other person, a switch between them, and a photo with both. Each frame
records who is visible, so tests can check recognition frame by frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.media.imageio import read_image

logger = logging.getLogger(__name__)

BACKGROUND = (96, 96, 96)


@dataclass(frozen=True)
class Scene:
    """``photo`` relative to the fixtures folder (None: empty frames; several photos
    separated by ``+``: side by side, scaled to one height); ``people`` in it."""

    photo: str | None
    people: tuple[str, ...]
    frames: int
    pan: bool = True


DEFAULT_SCENES: tuple[Scene, ...] = (
    Scene(None, (), 4),
    Scene("obama/obama_1.jpg", ("obama",), 16),
    Scene("biden/biden_2.jpg", ("biden",), 16),
    Scene(None, (), 3),
    Scene("obama/obama_4.jpg", ("obama",), 10),
    Scene("biden/biden_1.jpg", ("biden",), 10),
    Scene("groups/obama_and_biden_2.jpg", ("biden", "obama"), 16),
    Scene(None, (), 3),
)

#: Only the two portraits the fixtures' README allows in published screenshots: both
#: side by side, then each alone (the enroll dialog takes its samples there).
PORTRAIT_SCENES: tuple[Scene, ...] = (
    Scene("obama/obama_1.jpg+biden/biden_2.jpg", ("obama", "biden"), 30, pan=False),
    Scene("obama/obama_1.jpg", ("obama",), 30, pan=False),
    Scene("biden/biden_2.jpg", ("biden",), 20, pan=False),
)


@dataclass(frozen=True)
class FixtureVideo:
    """The written video and, per frame, the people visible in it."""

    path: Path
    size: tuple[int, int]
    fps: float
    people_per_frame: tuple[tuple[str, ...], ...]

    @property
    def frame_count(self) -> int:
        return len(self.people_per_frame)


def _place(canvas: np.ndarray, photo: np.ndarray, offset_x: int) -> None:
    """Paste ``photo`` onto ``canvas`` at ``offset_x``, vertically centred, clipped."""
    height, width = canvas.shape[:2]
    top = (height - photo.shape[0]) // 2
    left_src = max(0, -offset_x)
    left_dst = max(0, offset_x)
    span = min(photo.shape[1] - left_src, width - left_dst)
    if span > 0:
        canvas[top : top + photo.shape[0], left_dst : left_dst + span] = photo[:, left_src : left_src + span]


def _side_by_side(images: list[np.ndarray]) -> np.ndarray:
    """The images in a row, each scaled to the smallest one's height."""
    import cv2

    if len(images) == 1:
        return images[0]
    height = min(image.shape[0] for image in images)
    scaled = [cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height), interpolation=cv2.INTER_AREA)
              for image in images]
    return np.concatenate(scaled, axis=1)


def render_frames(fixtures: Path, scenes=DEFAULT_SCENES, size: tuple[int, int] = (640, 480)):
    """Yield ``(BGR frame, people)`` for every frame of ``scenes``."""
    import cv2

    width, height = size
    for scene in scenes:
        photo = None
        if scene.photo:
            image = _side_by_side([read_image(fixtures / name) for name in scene.photo.split("+")])
            scale = min((height - 40) / image.shape[0], (width - 20) / image.shape[1])
            photo = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        for index in range(scene.frames):
            canvas = np.empty((height, width, 3), np.uint8)
            canvas[:] = BACKGROUND
            if photo is not None:
                centred = (width - photo.shape[1]) // 2
                # Pan: move from left of centre to right of centre, keeping faces inside.
                travel = max(0, (width - photo.shape[1]) // 2) if scene.pan else 0
                fraction = index / max(1, scene.frames - 1)
                _place(canvas, photo, int(centred - travel + 2 * travel * fraction))
            yield canvas, (scene.people if photo is not None else ())


def make_fixture_video(fixtures: Path, path: Path, scenes=DEFAULT_SCENES, size: tuple[int, int] = (640, 480), fps: float = 10.0) -> FixtureVideo:
    """Write the video (MJPG in .avi, or mp4v in .mp4) and return its ground truth."""
    import cv2

    path = Path(path)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    people = []
    try:
        for frame, visible in render_frames(Path(fixtures), scenes, size):
            writer.write(frame)
            people.append(visible)
    finally:
        writer.release()
    logger.info("wrote %s: %d frames", path, len(people))
    return FixtureVideo(path, size, fps, tuple(people))
