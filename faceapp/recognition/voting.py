"""Stable names per track: a weighted vote over the track's recent recognitions.

:class:`NameVote` turns a track's recent recognitions into one name, weighted by
similarity and face quality, with hysteresis: the shown name changes only when the new
answer has won ``switch_after`` recognitions in a row, so names do not flicker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


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
