"""Writing sightings off the recognition thread, in batches.

:class:`MemoryWriter` owns one thread. The recognition side hands it closed sightings
(:meth:`submit`), asks for new visitors (:meth:`create_visitor`: made at once, so the
overlay can show "Unknown #N" within a frame or two) and for unclustered sightings to
join a visitor (:meth:`adopt`); it never waits. The thread writes whatever is queued
every ``interval_s`` in one transaction (:meth:`Gallery.record
<faceapp.storage.memory.MemoryMixin.record>`, which also purges sightings older than
the retention). A failed write is logged and counted, never raised into the live loop.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Hashable

from faceapp.errors import FaceAppError
from faceapp.storage.memory import NewSighting

logger = logging.getLogger(__name__)


class MemoryWriter:
    """Writes sightings of one or more streams to ``gallery`` on its own thread."""

    def __init__(self, gallery, interval_s: float = 1.0) -> None:
        self.gallery = gallery
        self.interval_s = interval_s
        self._jobs: queue.Queue = queue.Queue()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._keys: dict[int, int] = {}  # visitor key -> stored id
        self._fresh: list[tuple[int, int]] = []  # resolved keys not yet taken by the recognition side
        self._written: dict[int, int] = {}  # sighting ref -> stored id (unclustered ones, for adoption)
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        self.own_revision: int | None = None  # the gallery's memory counter after our last write
        self._retry: list = []  # jobs of a failed batch, tried again (a busy gallery)
        self._tries = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="faceapp-memory-writer", daemon=True)
        self._thread.start()

    # -- from the recognition side --------------------------------------------------
    def submit(self, ref: int, sighting: NewSighting) -> None:
        self._jobs.put(("sighting", ref, sighting))

    def create_visitor(self, key: int) -> None:
        self._jobs.put(("visitor", key, None))
        self._wake.set()

    def adopt(self, key: int, refs: set[Hashable]) -> None:
        """Sightings ``refs`` (``("db", id)`` or ``("run", ref)``) join visitor ``key``."""
        self._jobs.put(("adopt", key, frozenset(refs)))

    def touch(self, visitor: int) -> None:
        """A face of ``visitor`` (id or key) is in view now (see :meth:`Gallery.touch_visitors`)."""
        self._jobs.put(("touch", visitor, None))

    def prune(self, visitor: int) -> None:
        """Forget ``visitor`` (id or key) if no sighting ended up with them."""
        self._jobs.put(("prune", visitor, None))

    def resolved(self, key: int) -> int | None:
        with self._lock:
            return self._keys.get(key)

    def take_resolved(self) -> list[tuple[int, int]]:
        with self._lock:
            fresh, self._fresh = self._fresh, []
        return fresh

    def close(self, timeout_s: float = 30.0) -> bool:
        """Write what is queued and stop; True if done within ``timeout_s``."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        done = threading.Event()
        self._jobs.put(("flush", done, None))
        self._wake.set()
        done.wait(timeout_s)

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            stopping = self._stop
            self._drain()
            if stopping:
                return

    def _drain(self) -> None:
        jobs, self._retry = self._retry, []
        while True:
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        if not jobs:
            return
        try:
            self._write([j for j in jobs if j[0] != "flush"])
            self._tries = 0
            self.own_revision = self.gallery.memory_revision()
        except FaceAppError as error:
            self.failures += 1
            self.last_error = str(error)
            self._tries += 1
            if self._tries <= 5 and not self._stop:  # e.g. busy: the same jobs again next time
                self._retry = [j for j in jobs if j[0] != "flush"]
                logger.warning("could not write %d sighting job(s), trying again: %s", len(jobs), error)
            else:
                logger.warning("could not write %d sighting job(s); they are lost: %s", len(jobs), error)
        except Exception:  # never let the writer die silently
            self.failures += 1
            logger.exception("the sightings writer failed")
        finally:
            for kind, done, _ in jobs:
                if kind == "flush":
                    done.set()

    def _write(self, jobs: list) -> None:
        keys = [key for kind, key, _ in jobs if kind == "visitor" and key not in self._keys]
        if keys:
            ids = self.gallery.create_visitors(len(keys))
            with self._lock:
                self._keys.update(zip(keys, ids))
                self._fresh += list(zip(keys, ids))
        batch: list[tuple[int, NewSighting]] = []
        adopt: dict[int, set[int]] = {}
        for kind, key, value in jobs:
            if kind == "sighting":
                batch.append((key, value))
            elif kind == "adopt":
                visitor = self._keys.get(key, key)
                for ref in value:
                    if ref[0] == "db":
                        adopt.setdefault(visitor, set()).add(int(ref[1]))
                    elif ref[1] in self._written:
                        adopt.setdefault(visitor, set()).add(self._written[ref[1]])
                    else:  # still in this batch: give it the visitor before it is written
                        batch = [(r, dataclasses.replace(s, visitor=visitor) if r == ref[1] and s.person is None else s)
                                 for r, s in batch]
        sightings = [dataclasses.replace(s, visitor=self._keys.get(s.visitor, s.visitor)) if s.visitor and s.visitor < 0 else s
                     for _, s in batch]
        touched = {self._keys.get(v, v) for kind, v, _ in jobs if kind == "touch"}
        pruned = {self._keys.get(v, v) for kind, v, _ in jobs if kind == "prune"}
        if sightings or adopt:
            result = self.gallery.record(sightings, adopt={v: sorted(ids) for v, ids in adopt.items()})
            with self._lock:
                for key, visitor in result.visitors.items():  # keys record() had to make: made once only
                    if key not in self._keys:
                        self._keys[key] = visitor
                        self._fresh.append((key, visitor))
            for (ref, sighting), sid in zip(batch, result.ids):
                if sighting.person is None:
                    self._written[ref] = sid
            self.written += len(result.ids)
        if touched := {v for v in touched if v > 0}:
            self.gallery.touch_visitors(sorted(touched))
        if pruned := {v for v in pruned if v > 0}:
            self.gallery.prune_visitors(sorted(pruned))


class NoWriter:
    """Keeps nothing (alerts without sightings, a read-only gallery): the same calls as
    :class:`MemoryWriter`; visitors are never made."""

    written = failures = 0
    last_error = None

    own_revision = None

    def submit(self, ref, sighting) -> None: ...
    def create_visitor(self, key) -> None: ...
    def touch(self, visitor) -> None: ...
    def prune(self, visitor) -> None: ...
    def adopt(self, key, refs) -> None: ...
    def resolved(self, key) -> None:
        return None

    def take_resolved(self) -> list:
        return []

    def close(self, timeout_s: float = 30.0) -> bool:
        return True

    def flush(self, timeout_s: float = 30.0) -> None: ...
