"""Face tracking across frames and stable, vote-based names per track.

* :class:`Tracker` keeps a track per face: detections are associated with tracks by an
  optimal assignment (Hungarian, ``scipy.optimize.linear_sum_assignment``) on the IoU
  between each detection and the track's *predicted* box (constant velocity), so two
  faces that cross keep their ids. A track unseen for more than ``max_missed`` frames
  ends; a face that comes back after that gets a new id.
* :class:`NameVote` turns a track's recent recognitions into one name, weighted by
  similarity and face quality, with hysteresis: the shown name changes only when the
  new answer has won ``switch_after`` recognitions in a row.
* :class:`LiveRecognizer` runs the pipeline with tracking: every frame is detected, but a
  track is embedded only when it appears, every ``reembed_every`` frames, or when a
  clearly better view of the face arrives. All faces that need an embedding in one
  frame go in one batch.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from faceapp.recognition.pipeline import Recognizer
from faceapp.types import Detection, FaceResult, FrameResult, Match, StageTimes
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


@dataclass(frozen=True)
class Observation:
    """One recognition of a track: best person (None below threshold), its similarity,
    the threshold it was judged against, and the face's quality in [0, 1]."""

    name: str | None
    similarity: float
    quality: float
    threshold: float = 0.363

    @property
    def weight(self) -> float:
        """Evidence strength: every recognition counts, clear ones (far from the
        threshold, on good faces) count more."""
        return max(self.quality, 0.05) * (0.5 + abs(self.similarity - self.threshold))


class NameVote:
    """The stable name of one track from its recent observations."""

    def __init__(self, window: int = 8, switch_after: int = 2, decay: float = 0.7):
        if window < 1 or switch_after < 1:
            raise ValueError("window and switch_after must be >= 1")
        self.observations: deque[Observation] = deque(maxlen=window)
        self.switch_after = switch_after
        self.decay = decay
        self.name: str | None = None
        self.decided = False
        self._challenger: str | None = None
        self._streak = 0

    def scores(self) -> dict[str | None, float]:
        """Vote per candidate (None = unknown): observation weights, recent ones
        counting more (``decay`` per step back)."""
        totals: dict[str | None, float] = {}
        for age, obs in enumerate(reversed(self.observations)):
            totals[obs.name] = totals.get(obs.name, 0.0) + obs.weight * self.decay**age
        return totals

    def add(self, observation: Observation) -> str | None:
        self.observations.append(observation)
        totals = self.scores()
        leader = max(totals, key=lambda k: totals[k])
        if not self.decided:
            self.name, self.decided = leader, True
        elif leader != self.name:
            self._streak = self._streak + 1 if leader == self._challenger else 1
            self._challenger = leader
            if self._streak >= self.switch_after:
                self.name, self._challenger, self._streak = leader, None, 0
        else:
            self._challenger, self._streak = None, 0
        return self.name

    def mean_similarity(self, name: str | None) -> float:
        values = [o.similarity for o in self.observations if o.name == name]
        return float(np.mean(values)) if values else (self.observations[-1].similarity if self.observations else 0.0)


@dataclass(frozen=True)
class TrackingConfig:
    iou_threshold: float = 0.2
    max_missed: int = 15
    reembed_every: int = 10  # frames
    better_view: float = 1.25  # re-embed when face quality grows by this factor
    vote_window: int = 8
    switch_after: int = 2
    same_face: float = 0.25  # a track whose new embedding is less similar than this to its last one is split


@dataclass
class _TrackState:
    vote: NameVote
    embedding: np.ndarray | None = None
    last_embedded: int = -(10**9)
    best_quality: float = 0.0
    last_match: Match | None = None


def _face_quality(detection: Detection) -> float:
    """Cheap per-frame quality: detector confidence x size (saturating at 120 px)."""
    return detection.score * min(1.0, min(detection.box[2], detection.box[3]) / 120.0)


class LiveRecognizer:
    """Recognition with tracking for live video. Not thread-safe: one per worker."""

    def __init__(self, recognizer: Recognizer, config: TrackingConfig | None = None):
        self.recognizer = recognizer
        self.config = config or TrackingConfig()
        self.tracker = Tracker(self.config.iou_threshold, self.config.max_missed)
        self._states: dict[int, _TrackState] = {}
        self._frame_index = -1
        self._matcher_id = None

    def reset(self) -> None:
        self.tracker.reset()
        self._states.clear()

    def process(self, image: np.ndarray, frame_index: int | None = None) -> FrameResult:
        """Detect every frame; embed only the tracks that need it, in one batch."""
        self._frame_index = self._frame_index + 1 if frame_index is None else frame_index
        index = self._frame_index
        start = time.perf_counter()
        detections = self.recognizer.detect(image)
        track_ids, ended = self.tracker.update(index, detections)
        for tid in ended:
            self._states.pop(tid, None)
        detected = time.perf_counter()

        matcher = self.recognizer.matcher()
        if matcher is not self._matcher_id:  # gallery or threshold changed: re-decide everyone
            self._matcher_id = matcher
            for state in self._states.values():
                state.last_embedded = -(10**9)
                state.vote.observations.clear()
                state.vote.decided = False
        needs = []
        for row, (tid, detection) in enumerate(zip(track_ids, detections)):
            state = self._states.setdefault(tid, _TrackState(NameVote(self.config.vote_window, self.config.switch_after)))
            quality = _face_quality(detection)
            unsettled = state.last_match is not None and state.last_match.name != state.vote.name
            if (
                state.embedding is None
                or tid in self.tracker.weak  # followed by position only: check who it is
                or unsettled  # the last recognition disagreed with the shown name: confirm now
                or index - state.last_embedded >= self.config.reembed_every
                or quality > state.best_quality * self.config.better_view
            ):
                needs.append(row)
        faces = self.recognizer.align(image, [detections[r] for r in needs])
        aligned = time.perf_counter()
        embeddings = self.recognizer.embed(faces)
        embedded = time.perf_counter()
        if needs:
            matches = matcher.match(embeddings, unique=False)
            for row, embedding, match in zip(needs, embeddings, matches):
                state = self._states[track_ids[row]]
                if state.embedding is not None and float(embedding @ state.embedding) < self.config.same_face:
                    # Another face took this track's place: it is a new track.
                    old = track_ids[row]
                    track_ids[row] = self.tracker.split(old)
                    del self._states[old]
                    state = self._states[track_ids[row]] = _TrackState(NameVote(self.config.vote_window, self.config.switch_after))
                quality = _face_quality(detections[row])
                state.embedding, state.last_embedded, state.last_match = embedding, index, match
                state.best_quality = max(state.best_quality, quality)
                state.vote.add(Observation(match.name, match.similarity, quality, match.threshold))
        results = self._results(detections, track_ids, matcher.threshold)
        matched = time.perf_counter()
        times = StageTimes(
            detect=(detected - start) * 1e3, align=(aligned - detected) * 1e3,
            embed=(embedded - aligned) * 1e3, match=(matched - embedded) * 1e3,
        )
        return FrameResult(tuple(results), times, (image.shape[1], image.shape[0]))

    def _results(self, detections: list[Detection], track_ids: list[int], threshold: float) -> list[FaceResult]:
        """Each face with its track's voted name; one name per frame at most (the track
        with the stronger vote keeps it, the other shows "unknown")."""
        claims: dict[str, tuple[float, int]] = {}
        for tid in track_ids:
            vote = self._states[tid].vote
            if vote.name is not None:
                strength = vote.scores().get(vote.name, 0.0)
                if vote.name not in claims or strength > claims[vote.name][0]:
                    claims[vote.name] = (strength, tid)
        results = []
        for tid, detection in zip(track_ids, detections):
            state = self._states[tid]
            name = state.vote.name if state.vote.name is not None and claims[state.vote.name][1] == tid else None
            last = state.last_match
            similarity = state.vote.mean_similarity(name) if name else (last.similarity if last else 0.0)
            match = Match(name, similarity, last.best_name if last else None, last.margin if last else 0.0, threshold)
            embedding = state.embedding if state.embedding is not None else np.zeros(self.recognizer.card.embedding_dim, np.float32)
            results.append(FaceResult(detection, embedding, match, track_id=tid))
        return results
