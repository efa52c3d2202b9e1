"""Pose-diverse webcam enrollment: gather frontal, left and right views, keep those that add most.

A camera session of someone looking at the screen gives near-copies of one view, while
the live camera will see them turned. :class:`PoseCapture` plans the capture of a
person's empty template slots: for each pose in :data:`POSES` it asks for a few more
candidate views than it will keep (each judged by :func:`pose_problem` on the yaw of its
5 landmarks, :func:`faceapp.vision.pose.yaw_degrees`), then keeps, for the empty slots,
the candidates that add most to the templates already kept
(:func:`~faceapp.recognition.template_selection.select_templates`, weighted by view
quality, every pose represented). No Qt here: the enroll dialog drives it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceapp.recognition.enrollment import Sample
from faceapp.recognition.template_selection import select_templates

__all__ = ["INSTRUCTIONS", "POSES", "PoseCapture", "PoseConfig", "pose_problem"]

POSES = ("frontal", "left", "right")
#: What the person is asked, per pose (the GUI translates these words).
INSTRUCTIONS = {
    "frontal": "look straight at the camera",
    "left": "turn your head a little to your left",
    "right": "turn your head a little to your right",
}
TURN_MORE = {"left": "turn a little more to your left", "right": "turn a little more to your right"}
TOO_FAR = "not so far: turn back a little"


@dataclass(frozen=True)
class PoseConfig:
    """Yaw limits in degrees (positive: the person's left; see :mod:`faceapp.vision.pose`)
    and how many candidates beyond the slots to gather per pose."""

    frontal_max: float = 10.0
    turned_min: float = 12.0
    turned_max: float = 35.0
    extra_candidates: int = 1


def pose_problem(yaw: float, pose: str, config: PoseConfig | None = None) -> str | None:
    """What keeps a view at ``yaw`` degrees from being the ``pose`` asked for (None: it is)."""
    config = config or PoseConfig()
    if pose == "frontal":
        return None if abs(yaw) <= config.frontal_max else INSTRUCTIONS["frontal"]
    sign = 1.0 if pose == "left" else -1.0
    if pose not in TURN_MORE:
        raise ValueError(f"unknown pose {pose!r}; expected one of {', '.join(POSES)}")
    turned = sign * yaw
    if turned < config.turned_min:
        return TURN_MORE[pose]
    if turned > config.turned_max:
        return TOO_FAR
    return None


class PoseCapture:
    """One capture round for the empty slots of ``slots`` (their ``poses``: the pose each
    filled slot was taken in, None for a slot filled otherwise).

    Call :meth:`offer` with each accepted sample and its yaw until :attr:`done`, then
    :meth:`finish` for the slots filled."""

    def __init__(self, slots: Sequence[Sample | None], poses: Sequence[str | None], config: PoseConfig | None = None):
        if len(slots) != len(poses):
            raise ValueError("one pose per slot")
        self.config = config or PoseConfig()
        self.slots, self.poses = list(slots), list(poses)
        empty = [i for i, sample in enumerate(self.slots) if sample is None]
        if not empty:
            raise ValueError("no empty slot to capture")
        if all(sample is None for sample in self.slots):
            wanted = POSES if len(self.slots) > 1 else POSES[:1]
        else:  # a retake: the poses of the slots emptied (frontal for slots without one)
            wanted = tuple(dict.fromkeys(self.poses[i] or "frontal" for i in empty))
        per_pose = math.ceil(len(empty) / len(wanted)) + self.config.extra_candidates
        self.plan: list[tuple[str, int]] = [(pose, per_pose) for pose in wanted]
        self.candidates: list[tuple[Sample, str]] = []
        self._step = 0

    @property
    def done(self) -> bool:
        return self._step >= len(self.plan)

    @property
    def pose(self) -> str | None:
        """The pose asked for now (None when done)."""
        return None if self.done else self.plan[self._step][0]

    @property
    def progress(self) -> tuple[int, int, int, int]:
        """``(step, steps, views taken in this pose, views needed in it)``, steps from 1."""
        if self.done:
            return len(self.plan), len(self.plan), 0, 0
        pose, needed = self.plan[self._step]
        return self._step + 1, len(self.plan), sum(p == pose for _, p in self.candidates), needed

    def offer(self, sample: Sample, yaw: float) -> str | None:
        """Take ``sample`` (at ``yaw`` degrees) as a candidate of the current pose; returns
        the problem to tell the person instead when it is not that pose."""
        if self.done:
            raise RuntimeError("the capture is done")
        pose, needed = self.plan[self._step]
        problem = pose_problem(yaw, pose, self.config)
        if problem is not None:
            return problem
        self.candidates.append((sample, pose))
        if sum(p == pose for _, p in self.candidates) >= needed:
            self._step += 1
        return None

    def finish(self) -> tuple[list[Sample | None], list[str | None]]:
        """The slots with the empty ones filled by the candidates that add most, and their poses."""
        kept = [(i, sample) for i, sample in enumerate(self.slots) if sample is not None]
        empty = [i for i, sample in enumerate(self.slots) if sample is None]
        pool = [sample for _, sample in kept] + [sample for sample, _ in self.candidates]
        groups = [self.poses[i] or "frontal" for i, _ in kept] + [pose for _, pose in self.candidates]
        if len(pool) < len(self.slots):
            raise RuntimeError("the capture is not done")
        embeddings = np.stack([s.embedding for s in pool]).astype(np.float32)
        weights = np.array([s.quality.score for s in pool])
        chosen = select_templates(embeddings, len(self.slots), weights=weights, groups=groups, keep=range(len(kept)))
        slots, poses = list(self.slots), list(self.poses)
        for slot, index in zip(empty, chosen[len(kept):]):
            slots[slot], poses[slot] = pool[index], groups[index]
        return slots, poses
