"""``faceapp verify --live``: is the person in front of the camera live, and who we expect?

:func:`verify_live` reads frames of a camera (or a video), and for the one face in each:

* the passive check (:class:`~faceapp.vision.liveness.LivenessChecker`) scores the face;
* the head's yaw drives the active :class:`~faceapp.recognition.challenge.HeadTurnChallenge`;
* every view is embedded: it must match the view before it, or the first frontal one (at
  the verification threshold), so that the face that turns, the face that is scored and
  the face that is identified are one face (a swap between frames fails the check);
* frontal views are compared with the expected person.

The run stops when the challenge fails, or once it passed and :data:`MIN_FRONTAL`
frontal views are in (at most :data:`GRACE_S` more seconds). The verdict: *live* when
the challenge passed, the face never changed, and the lower quartile of the passive
scores is at least the checker's threshold; *same person* when the mean embedding of the
frontal views matches the reference (a photo's embedding, at the verification threshold)
or is named as the expected enrolled person by the gallery's decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from faceapp.media.sources import Frame
from faceapp.recognition.challenge import ChallengeState, HeadTurnChallenge
from faceapp.recognition.pipeline import Recognizer
from faceapp.vision.pose import yaw_degrees

logger = logging.getLogger(__name__)

MIN_FRONTAL = 3  # frontal views needed to judge who it is
GRACE_S = 3.0  # after the challenge passed, how long to wait for them


@dataclass(frozen=True)
class LiveVerdict:
    """What :func:`verify_live` found. ``same``: None when nothing was compared (no
    frontal views). ``reason``: one line, empty when live and the same person."""

    live: bool
    same: bool | None
    liveness: float | None  # the lower quartile of the passive scores
    similarity: float | None  # to the reference (or the expected person's best score)
    challenge: str  # the challenge's final state
    frames: int
    reason: str

    @property
    def verdict(self) -> str:
        if self.live and self.same:
            return "same person, live"
        return f"not verified: {self.reason}"

    def to_json(self) -> dict:
        return {"live": self.live, "same_person": self.same, "verified": bool(self.live and self.same),
                "liveness": None if self.liveness is None else round(self.liveness, 4),
                "similarity": None if self.similarity is None else round(self.similarity, 4),
                "challenge": self.challenge, "frames": self.frames, "reason": self.reason}


def verify_live(recognizer: Recognizer, frames: Iterable[Frame], checker, challenge: HeadTurnChallenge, *,
                reference: np.ndarray | None = None, person: str | None = None,
                on_prompt: Callable[[str], None] | None = None) -> LiveVerdict:
    """Run the checks over ``frames`` until the challenge ends (see the module docstring).
    ``reference``: a float32 ``(D,)`` unit embedding (a photo of the person); or
    ``person``: an enrolled name, decided by the recognizer's gallery matcher."""
    if (reference is None) == (person is None):
        raise ValueError("give a reference embedding or an enrolled person's name, not both")
    scores: list[float] = []
    frontal: list[np.ndarray] = []
    previous = anchor = None
    count, crowded, changed, shown, passed_at = 0, 0, False, challenge.prompt, None
    if on_prompt is not None:
        on_prompt(shown)
    for frame in frames:
        count += 1
        found = recognizer.detect(frame.image, video=True)
        yaw = None
        if len(found) > 1:
            crowded += 1
        elif found:
            face = found[0]
            yaw = yaw_degrees(face.landmarks)
            scores.append(checker.check(frame.image, face).score)
            embedding = recognizer.embed(recognizer.align(frame.image, [face]))[0]
            threshold = recognizer.verification_threshold
            if previous is not None and float(embedding @ previous) < threshold and (
                    anchor is None or float(embedding @ anchor) < threshold):
                changed = True
                break
            previous = embedding
            if abs(yaw) <= challenge.config.frontal_degrees:
                frontal.append(embedding)
                anchor = frontal[0]
        challenge.step(frame.time_s, yaw)
        if on_prompt is not None and challenge.prompt != shown:
            shown = challenge.prompt
            on_prompt(shown)
        if challenge.state is ChallengeState.FAILED:
            break
        if challenge.state is ChallengeState.PASSED:
            passed_at = frame.time_s if passed_at is None else passed_at
            if len(frontal) >= MIN_FRONTAL or frame.time_s - passed_at > GRACE_S:
                break
    challenge.end()
    liveness = float(np.percentile(scores, 25)) if scores else None
    same, similarity = _identity(recognizer, frontal, reference, person)
    reasons = []
    if changed:
        reasons.append("the face changed during the check (another person, or a photo swapped in)")
    elif not scores:
        reasons.append("no single face was seen" + (f" ({crowded} frames had several faces)" if crowded else ""))
    elif challenge.state is not ChallengeState.PASSED:
        reasons.append(f"head-turn challenge failed: {challenge.reason}")
    if liveness is not None and liveness < checker.threshold:
        reasons.append(f"the face looks like a photo or a screen (liveness {liveness:.2f} < {checker.threshold:.2f})")
    live = (not changed and challenge.state is ChallengeState.PASSED and liveness is not None
            and liveness >= checker.threshold)
    if changed:
        return LiveVerdict(False, False, liveness, None, challenge.state.value, count, "; ".join(reasons))
    if scores and same is None:
        reasons.append(f"too few views facing the camera to tell who it is ({len(frontal)} of {MIN_FRONTAL})")
    elif same is False:
        who = f"'{person}'" if person is not None else "the reference photo"
        reasons.append(f"not {who} (similarity {similarity:.2f})")
    return LiveVerdict(live, same, liveness, similarity, challenge.state.value, count, "; ".join(reasons))


def _identity(recognizer: Recognizer, frontal: list[np.ndarray], reference: np.ndarray | None,
              person: str | None) -> tuple[bool | None, float | None]:
    if len(frontal) < MIN_FRONTAL:
        return None, None
    mean = np.mean(frontal, axis=0)
    mean = (mean / np.linalg.norm(mean)).astype(np.float32)
    if reference is not None:
        similarity = float(mean @ reference)
        return similarity >= recognizer.verification_threshold, similarity
    matcher = recognizer.matcher()
    match = matcher.match(mean[None])[0]
    names = list(matcher.present_names)
    similarity = float(matcher.person_scores(mean[None])[0, names.index(person)]) if person in names else match.similarity
    return match.name == person, similarity
