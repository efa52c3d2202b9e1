"""A one-slot buffer between two threads: the latest item wins.

The producer never waits and never queues: :meth:`LatestSlot.put` replaces whatever is
still waiting (counting it as dropped). The consumer takes the newest item, or waits a
short while for one. This is what keeps the live view at most one processed frame behind
the camera when recognition is slower than capture. No Qt here.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` overwrites, ``take`` empties. Thread-safe."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._dropped = 0

    def put(self, item: T) -> None:
        """Store ``item``, dropping any item not taken yet."""
        with self._condition:
            if self._item is not None:
                self._dropped += 1
            self._item = item
            self._condition.notify()

    def take(self, timeout: float | None = 0.0) -> T | None:
        """The waiting item (emptying the slot), waiting up to ``timeout`` seconds for one;
        None if nothing came. ``timeout=None`` waits until an item arrives."""
        with self._condition:
            if self._item is None and timeout != 0.0:
                self._condition.wait_for(lambda: self._item is not None, timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        """Drop the waiting item, if any (not counted as dropped)."""
        with self._condition:
            self._item = None

    @property
    def dropped(self) -> int:
        """How many items were overwritten before anyone took them."""
        with self._condition:
            return self._dropped
