"""The active liveness challenge: "turn your head to your left, then to your right" (the
order drawn at random), judged from the head's yaw across frames, within a time limit.

A photo or a screen held up to the camera cannot turn on request. A turn the wrong way
fails the challenge, and each turn must start from a frontal view, so a pre-recorded
video (which turns in one order) fails half of the challenges, whatever it does after
its first turn. The passive check (:mod:`faceapp.vision.liveness`) covers what a turning
head alone does not.

:class:`HeadTurnChallenge` is pure logic: feed it each frame's time (seconds) and the
face's yaw (degrees, :func:`faceapp.vision.pose.yaw_degrees`: positive when the person
turns to *their* left; None when there is no single face), and read :attr:`state`,
:attr:`prompt` and :attr:`reason`. The person has ``time_limit_s`` from the first frame
to look straight at the camera, and as long again from then to make both turns.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

#: Yaw beyond which a head counts as turned; below :data:`FRONTAL_DEGREES` as facing the
#: camera (the challenge starts from there).
TURN_DEGREES = 20.0
FRONTAL_DEGREES = 10.0
TIME_LIMIT_S = 10.0
DIRECTIONS = ("left", "right")


class ChallengeState(enum.Enum):
    WAITING = "waiting"  # for a frontal face, to start
    TURNING = "turning"  # asked to turn (see HeadTurnChallenge.prompt)
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class ChallengeConfig:
    turn_degrees: float = TURN_DEGREES
    frontal_degrees: float = FRONTAL_DEGREES
    time_limit_s: float = TIME_LIMIT_S

    def validate(self) -> None:
        if not 0 < self.frontal_degrees < self.turn_degrees < 90:
            raise ValueError(f"need 0 < frontal ({self.frontal_degrees}) < turn ({self.turn_degrees}) < 90 degrees")
        if self.time_limit_s <= 0:
            raise ValueError(f"the time limit must be positive, got {self.time_limit_s}")


class HeadTurnChallenge:
    """See the module docstring. ``order``: the two directions in the order asked (None:
    drawn with ``rng``, a :class:`random.Random`, or the system's randomness)."""

    def __init__(self, config: ChallengeConfig | None = None, order: tuple[str, str] | None = None,
                 rng: random.Random | None = None):
        self.config = config or ChallengeConfig()
        self.config.validate()
        if order is None:
            order = tuple((rng or random.SystemRandom()).sample(DIRECTIONS, 2))
        if sorted(order) != sorted(DIRECTIONS):
            raise ValueError(f"the order must be left and right in some order, got {order!r}")
        self.order: tuple[str, str] = order  # type: ignore[assignment]
        self.state = ChallengeState.WAITING
        self.done: list[str] = []
        self.reason = ""
        self.first_frame_at: float | None = None
        self.started_at: float | None = None  # the first frontal view
        self.armed = False  # the head faced the camera since the last turn: the next turn counts
        self.extreme = {"left": 0.0, "right": 0.0}  # the furthest turn seen each way since the last turn (degrees)

    @property
    def prompt(self) -> str:
        """What to ask of the person now."""
        if self.state is ChallengeState.WAITING:
            return "look straight at the camera"
        if self.state is ChallengeState.TURNING:
            return f"turn your head to your {self.order[len(self.done)]}"
        return "done" if self.state is ChallengeState.PASSED else f"failed: {self.reason}"

    @property
    def finished(self) -> bool:
        return self.state in (ChallengeState.PASSED, ChallengeState.FAILED)

    def step(self, time_s: float, yaw: float | None) -> ChallengeState:
        """One frame: its time and the face's yaw (None: no face, or several)."""
        if self.finished:
            return self.state
        if self.first_frame_at is None:
            self.first_frame_at = time_s
        if self.started_at is None and time_s - self.first_frame_at > self.config.time_limit_s:
            return self.fail(f"no face looked straight at the camera within {self.config.time_limit_s:g} s")
        if self.started_at is not None and time_s - self.started_at > self.config.time_limit_s:
            return self.fail(self._timeout_reason())
        if yaw is None:
            return self.state
        frontal = abs(yaw) <= self.config.frontal_degrees
        if self.state is ChallengeState.WAITING:
            if frontal:
                self.started_at, self.state, self.armed = time_s, ChallengeState.TURNING, True
            return self.state
        if frontal:
            self.armed = True
        if not self.armed:  # still coming back from the last turn (a turn from there does not count)
            return self.state
        side = "left" if yaw > 0 else "right"
        self.extreme[side] = max(self.extreme[side], abs(yaw))
        wanted = self.order[len(self.done)]
        signed = yaw if wanted == "left" else -yaw
        if -signed >= self.config.turn_degrees:
            other = "right" if wanted == "left" else "left"
            return self.fail(f"turned {other} when asked to turn {wanted}")
        if signed >= self.config.turn_degrees:
            self.done.append(wanted)
            self.armed = False  # the next turn starts from a frontal view
            self.extreme = {"left": 0.0, "right": 0.0}  # the next turn's reach is measured from now
            if len(self.done) == len(self.order):
                self.state = ChallengeState.PASSED
        return self.state

    def end(self) -> ChallengeState:
        """The frames ran out: an unfinished challenge fails."""
        if not self.finished:
            if self.state is ChallengeState.WAITING:
                return self.fail("no face looked straight at the camera")
            return self.fail(self._timeout_reason(ended=True))
        return self.state

    def _timeout_reason(self, ended: bool = False) -> str:
        wanted = self.order[len(self.done)]
        turned = self.extreme[wanted]
        when = "before the video ended" if ended else f"within {self.config.time_limit_s:g} s"
        done = f"turned {self.done[0]}, " if self.done else ""
        if self.done and not self.armed:
            return f"{done}never looked straight at the camera again, so the turn {wanted} could not start"
        return (f"{done}did not turn {wanted} {when} (at most {turned:.0f} of the "
                f"{self.config.turn_degrees:.0f} degrees needed)")

    def fail(self, reason: str) -> ChallengeState:
        """End the challenge as failed, for ``reason`` (also for checks made outside it)."""
        self.state, self.reason = ChallengeState.FAILED, reason
        return self.state
