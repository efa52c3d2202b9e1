"""Tracking as a stage of the pipeline: who each face of a video is, frame after frame.

A :class:`Tracking` object holds the state of one video stream; hand it to
:meth:`Recognizer.process(image, tracking) <faceapp.recognition.pipeline.Recognizer.process>`.
Every frame is detected; :meth:`Tracking.plan` then follows the faces with a
:class:`~faceapp.recognition.tracking.Tracker` and says which of them need an embedding:
a new track, one followed by position only, one whose last recognition disagreed with
its shown name, one not embedded for ``reembed_every`` frames, one seen in a clearly
better view, and every face whose picture changed. The pipeline embeds those in one
batch, and :meth:`Tracking.decide` gives every face its track's voted name
(:class:`~faceapp.recognition.voting.NameVote`). Each recognition's vote weighs by its
view's quality (:func:`~faceapp.vision.quality.view_quality`, the detector's
confidence), and a view too poor to judge (:func:`~faceapp.vision.quality.judged`)
names nobody: the track keeps what better views said, or waits for one
(``tools/measure_quality_votes.py`` measures both).

A name is never carried onto another face:

* at a **shot cut** (:func:`~faceapp.vision.scene.is_cut`: the whole frame changes
  abruptly) every track ends, so every face in the new shot is recognised afresh;
* when a tracked face's **appearance changes** (its box is suddenly filled by another
  face, :func:`~faceapp.vision.scene.appearance_similarity`), it is re-embedded in that
  very frame, and unless the new embedding matches the track's last one at the match
  threshold, the face gets a new track with a fresh vote;
* a re-embedded track whose embedding no longer resembles its last one is split too.

In each case the name shown in that frame comes from that frame's embedding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from faceapp.recognition.matching import Matcher
from faceapp.recognition.tracking import Tracker
from faceapp.recognition.voting import NameVote, Observation
from faceapp.types import AlignedFace, Detection, FaceResult, Match
from faceapp.vision.quality import judged, view_quality
from faceapp.vision.scene import APPEARANCE_CHANGE, CUT_THRESHOLD, appearance_similarity, frame_signature, is_cut, patch_signature

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackingConfig:
    iou_threshold: float = 0.2
    max_missed: int = 15
    reembed_every: int = 10  # frames
    undecided_every: int = 3  # frames: a track no view has named yet (all too poor) is re-embedded this often
    better_view: float = 1.25  # re-embed when face quality grows by this factor
    vote_window: int = 8
    switch_after: int = 2
    same_face: float = 0.25  # a track whose new embedding is less similar than this to its last one is split
    cut_threshold: float = CUT_THRESHOLD  # see faceapp.vision.scene
    appearance_change: float = APPEARANCE_CHANGE


@dataclass
class _TrackState:
    vote: NameVote
    embedding: np.ndarray | None = None
    last_embedded: int = -(10**9)
    best_quality: float = 0.0
    last_match: Match | None = None  # of the last view judged (see vision.quality.judged)
    last_judged: bool = False  # whether the last embedded view was judged
    patch: np.ndarray | None = None  # the face's appearance in the last frame
    changed: bool = False  # the appearance changed in this frame


@dataclass
class TrackPlan:
    """What :meth:`Tracking.plan` decided for one frame: the track id of every detection
    (same order), the rows to embed now, and whether the frame starts a new shot."""

    frame_index: int
    track_ids: list[int]
    needs: tuple[int, ...]
    cut: bool = False


def face_quality(detection: Detection) -> float:
    """Cheap per-frame quality for choosing when to re-embed and which crop a sighting
    keeps: detector confidence x size (saturating at 120 px). (Votes weigh by
    :func:`~faceapp.vision.quality.view_quality` instead.)"""
    return detection.score * min(1.0, min(detection.box[2], detection.box[3]) / 120.0)


@dataclass
class TrackingStats:
    """Counts since the stream started (for tests and the log)."""

    frames: int = 0
    cuts: int = 0
    appearance_changes: int = 0
    splits: int = 0
    embedded: int = 0
    unjudged: int = 0  # embedded views too poor to vote


class Tracking:
    """The tracking state of one video stream. Not thread-safe: one per worker."""

    def __init__(self, config: TrackingConfig | None = None) -> None:
        self.config = config or TrackingConfig()
        self.tracker = Tracker(self.config.iou_threshold, self.config.max_missed)
        self.stats = TrackingStats()
        self._states: dict[int, _TrackState] = {}
        self._frame_index = -1
        self._matcher: Matcher | None = None
        self._signature: np.ndarray | None = None

    def reset(self) -> None:
        """Forget every track (a new source, or a cut)."""
        self.tracker.reset()
        self._states.clear()

    def _new_state(self) -> _TrackState:
        return _TrackState(NameVote(self.config.vote_window, self.config.switch_after))

    # -- before embedding ---------------------------------------------------------------
    def plan(self, image: np.ndarray, detections: list[Detection], matcher: Matcher, frame_index: int | None = None) -> TrackPlan:
        """Follow ``detections`` (of the BGR frame ``image``) and choose whom to embed."""
        config = self.config
        self._frame_index = self._frame_index + 1 if frame_index is None else frame_index
        index = self._frame_index
        self.stats.frames += 1
        signature = frame_signature(image)
        cut = is_cut(self._signature, signature, config.cut_threshold)
        self._signature = signature
        if cut:
            self.stats.cuts += 1
            logger.debug("frame %d: shot cut; every face is recognised afresh", index)
            self.reset()
        track_ids, ended = self.tracker.update(index, detections)
        for tid in ended:
            self._states.pop(tid, None)
        if matcher is not self._matcher:  # gallery or threshold changed: re-decide everyone
            self._matcher = matcher
            for state in self._states.values():
                state.last_embedded = -(10**9)
                state.vote, state.last_match, state.last_judged = self._new_state().vote, None, False
        needs = []
        for row, (tid, detection) in enumerate(zip(track_ids, detections)):
            state = self._states.setdefault(tid, self._new_state())
            patch = patch_signature(image, detection.box)
            state.changed = state.patch is not None and appearance_similarity(state.patch, patch) < config.appearance_change
            state.patch = patch
            self.stats.appearance_changes += state.changed
            # (Only a judged view can unsettle: poor views follow the undecided / re-embed pace.)
            unsettled = state.last_judged and state.last_match is not None and state.last_match.name != state.vote.name
            if (
                state.embedding is None
                or state.changed  # another face may have taken this place: check who it is now
                or tid in self.tracker.weak  # followed by position only: check who it is
                or unsettled  # the last recognition disagreed with the shown name: confirm now
                or index - state.last_embedded >= config.reembed_every
                or (not state.vote.decided and index - state.last_embedded >= config.undecided_every)
                or face_quality(detection) > state.best_quality * config.better_view
            ):
                needs.append(row)
        return TrackPlan(index, list(track_ids), tuple(needs), cut)

    # -- after embedding ----------------------------------------------------------------
    def decide(
        self, plan: TrackPlan, detections: list[Detection], faces: list[AlignedFace], embeddings: np.ndarray,
        matcher: Matcher, dim: int, same_face: float | None = None,
    ) -> list[FaceResult]:
        """Record the new embeddings (one per row of ``plan.needs``) and name every face.
        ``same_face``: the model's own same-face similarity (its card's), else the config's."""
        same_face = self.config.same_face if same_face is None else same_face
        track_ids = plan.track_ids
        aligned: dict[int, AlignedFace] = {}
        if plan.needs:
            matches = matcher.match(embeddings, unique=False)
            self.stats.embedded += len(plan.needs)
            for row, face, embedding, match in zip(plan.needs, faces, embeddings, matches):
                aligned[row] = face
                state = self._states[track_ids[row]]
                if state.embedding is not None:
                    similarity = float(embedding @ state.embedding)
                    # After a change of appearance, only a clear match keeps the track.
                    needed = max(same_face, matcher.threshold) if state.changed else same_face
                    if similarity < needed:  # another face took this track's place: it is a new track
                        old = track_ids[row]
                        track_ids[row] = self.tracker.split(old)
                        patch = state.patch
                        del self._states[old]
                        state = self._states[track_ids[row]] = self._new_state()
                        state.patch = patch
                        self.stats.splits += 1
                detection = detections[row]
                state.embedding, state.last_embedded = embedding, plan.frame_index
                state.best_quality = max(state.best_quality, face_quality(detection))
                state.last_judged = judged(detection)
                if state.last_judged:
                    state.last_match = match
                    state.vote.add(Observation(match.name, match.similarity, view_quality(detection), match.threshold))
                else:  # too poor a view to name anybody: it does not vote
                    self.stats.unjudged += 1
        return self._results(detections, track_ids, matcher.threshold, aligned, dim)

    def _results(self, detections: list[Detection], track_ids: list[int], threshold: float,
                 aligned: dict[int, AlignedFace], dim: int) -> list[FaceResult]:
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
        for row, (tid, detection) in enumerate(zip(track_ids, detections)):
            state = self._states[tid]
            name = state.vote.name if state.vote.name is not None and claims[state.vote.name][1] == tid else None
            last = state.last_match
            similarity = state.vote.mean_similarity(name) if name else (last.similarity if last else 0.0)
            match = Match(name, similarity, last.best_name if last else None, last.margin if last else 0.0, threshold)
            embedding = state.embedding if state.embedding is not None else np.zeros(dim, np.float32)
            results.append(FaceResult(detection, embedding, match, track_id=tid, aligned=aligned.get(row),
                                      judged=state.vote.decided))
        return results


__all__ = ["TrackPlan", "Tracking", "TrackingConfig", "TrackingStats", "face_quality"]
