"""Following faces across frames: a track per face.

:class:`Tracker` associates each frame's detections with tracks by an optimal
assignment (Hungarian, ``scipy.optimize.linear_sum_assignment``) on the IoU between each
detection and the track's *predicted* box (constant velocity) plus a nearness term, so
two faces that cross keep their ids and fast low-frame-rate motion is still followed. A
track unseen for more than ``max_missed`` frames ends; a face that comes back after that
gets a new id. Who a track is, is decided elsewhere (:mod:`faceapp.recognition.live`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from faceapp.types import Detection
from faceapp.vision.boxes import iou_matrix

logger = logging.getLogger(__name__)


@dataclass
class Track:
    """One tracked face. ``box`` is the last detected box; ``velocity`` its per-frame motion."""

    track_id: int
    box: np.ndarray
    detection: Detection
    first_frame: int
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 1

    def predicted_box(self, frame_index: int, horizon: int = 3) -> np.ndarray:
        """Where the face should be now; motion is extrapolated ``horizon`` frames at most."""
        return self.box + self.velocity * min(frame_index - self.last_frame, horizon)


def affinity_matrix(boxes: np.ndarray, predicted: np.ndarray, max_jump: float) -> np.ndarray:
    """How well each detection (rows) fits each track's predicted box (columns): the IoU
    plus a centre-distance term, so that a face moving faster than its own width per
    frame (low frame rates) is still followed. The distance term is positive only within
    ``max_jump`` box sizes."""
    overlap = iou_matrix(boxes, predicted)
    centres_a = boxes[:, :2] + boxes[:, 2:] / 2
    centres_b = predicted[:, :2] + predicted[:, 2:] / 2
    distance = np.linalg.norm(centres_a[:, None] - centres_b[None], axis=2)
    size = np.sqrt(np.maximum(predicted[:, 2] * predicted[:, 3], 1.0))[None]
    closeness = np.clip(1.0 - distance / (max_jump * size), 0.0, None)
    return overlap + 0.5 * closeness


class Tracker:
    """Associates each frame's detections with tracks."""

    def __init__(self, iou_threshold: float = 0.2, max_missed: int = 15, max_jump: float = 1.5):
        if not 0.0 <= iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.max_jump = max_jump
        self.tracks: dict[int, Track] = {}
        #: Ids matched in the last update by nearness or small overlap only: their
        #: identity should be confirmed by appearance.
        self.weak: set[int] = set()
        self._next_id = 1

    def update(self, frame_index: int, detections: list[Detection]) -> tuple[list[int], list[int]]:
        """Assign a track id to each detection (same order); also return the ids of
        tracks that ended at this frame."""
        from scipy.optimize import linear_sum_assignment

        ended = [tid for tid, t in self.tracks.items() if frame_index - t.last_frame > self.max_missed]
        for tid in ended:
            del self.tracks[tid]
        ids: list[int | None] = [None] * len(detections)
        self.weak = set()
        track_list = list(self.tracks.values())
        if detections and track_list:
            boxes = np.array([d.box for d in detections])
            predicted = np.array([t.predicted_box(frame_index) for t in track_list])
            overlap = iou_matrix(boxes, predicted)
            affinity = affinity_matrix(boxes, predicted, self.max_jump)
            recent = np.array([frame_index - t.last_frame <= 2 for t in track_list])
            rows, cols = linear_sum_assignment(-affinity)
            for row, col in zip(rows, cols):
                # Overlap always counts; nearness alone only for tracks seen just now.
                near = recent[col] and affinity[row, col] > overlap[row, col]
                if overlap[row, col] >= self.iou_threshold or near:
                    track = track_list[col]
                    new_box = np.asarray(detections[row].box, np.float64)
                    gap = max(1, frame_index - track.last_frame)
                    # Smoothed constant-velocity estimate.
                    track.velocity = 0.5 * track.velocity + 0.5 * (new_box - track.box) / gap
                    track.box, track.detection = new_box, detections[row]
                    track.last_frame, track.hits = frame_index, track.hits + 1
                    ids[row] = track.track_id
                    if overlap[row, col] < 0.5:
                        self.weak.add(track.track_id)
        for row, detection in enumerate(detections):
            if ids[row] is None:
                track = Track(self._next_id, np.asarray(detection.box, np.float64), detection, frame_index, frame_index)
                self.tracks[track.track_id] = track
                ids[row] = track.track_id
                self._next_id += 1
        return [int(i) for i in ids], ended

    def split(self, track_id: int) -> int:
        """Give the face now followed by ``track_id`` a new id (its appearance showed it
        is not the face the track had); returns the new id."""
        track = self.tracks.pop(track_id)
        track.track_id, track.first_frame, track.hits = self._next_id, track.last_frame, 1
        track.velocity = np.zeros(4)
        self.tracks[track.track_id] = track
        self._next_id += 1
        return track.track_id

    def reset(self) -> None:
        self.tracks.clear()
        self.weak = set()
