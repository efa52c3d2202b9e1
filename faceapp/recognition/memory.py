"""People memory as a stage after recognition: every track becomes a sighting, and every
unknown face a remembered visitor ("Unknown #N") when there is enough of it.

:class:`Memory` follows one stream (``observe`` after each
:meth:`Recognizer.process <faceapp.recognition.pipeline.Recognizer.process>`): it adds
up each track (first and last time and frame, frames, best similarity, its best-quality
crop and embeddings), tells unknown faces' visitors (:mod:`faceapp.recognition.visitors`),
gives every face its visitor for the overlay, and emits an *appearance* event the first
time a track is someone (a person or a visitor), for alerts. A track not seen for
``close_after`` frames (every face of a folder of photos at once) is closed and handed
to a :class:`~faceapp.recognition.memory_writer.MemoryWriter`, which writes batches on
its own thread: nothing here waits for the disk.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from faceapp.errors import FaceAppError
from faceapp.recognition.live import face_quality
from faceapp.recognition.memory_writer import MemoryWriter, NoWriter
from faceapp.recognition.tracking import Tracker
from faceapp.recognition.visitors import VisitorConfig, VisitorIndex, mutually_close
from faceapp.storage.memory import MAX_SIGHTING_EMBEDDINGS, NewSighting
from faceapp.types import FaceResult, FrameResult

logger = logging.getLogger(__name__)

EMBEDDINGS_KEPT = 3  # per sighting, the best-quality ones


@dataclass
class _Track:
    ref: int
    first_seen: float
    first_frame: int | None
    file: str | None
    last_seen: float = 0.0
    last_frame: int | None = None
    last_index: int = 0
    frames: int = 0
    names: Counter = field(default_factory=Counter)
    best_similarity: float = -1.0
    crop: np.ndarray | None = None
    crop_quality: float = -1.0
    faces: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (quality, embedding), best first
    owner: int | None = None  # visitor id (> 0) or key (< 0)
    announced: str | None = None  # the name (or "unknown") last announced

    def embeddings(self) -> np.ndarray:
        return np.stack([e for _, e in self.faces]) if self.faces else np.zeros((0, 0), np.float32)


@dataclass(frozen=True)
class Appearance:
    """Someone appeared: the first frame a track is a person or a visitor."""

    source: str
    time: float
    frame: int | None
    track_id: int | None
    person: str | None
    visitor: int | None
    similarity: float
    file: str | None = None

    def to_json(self) -> dict:
        return {"event": "appeared", "source": self.source, "time": round(self.time, 3), "frame": self.frame,
                "track_id": self.track_id, "person": self.person, "visitor": self.visitor,
                "label": self.person or (f"Unknown #{self.visitor}" if self.visitor is not None else "Unknown"),
                "similarity": round(self.similarity, 4), "file": self.file}


class Memory:
    """The memory of one stream from ``source`` (its text, e.g. a file or ``webcam 0``).

    ``writer``: where closed sightings go (a :class:`MemoryWriter` on ``gallery``, made
    here when None; with ``keep=False`` nothing is written: alerts only). ``on_event(Appearance)`` runs on the caller's thread (keep it short).
    ``clock``: unix time now (tests)."""

    def __init__(self, gallery, model_id: str, dim: int, source: str, *, config: VisitorConfig | None = None,
                 writer: MemoryWriter | None = None, close_after: int = 20, keep: bool = True,
                 on_event: Callable[[Appearance], None] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.model_id, self.source, self.dim = model_id, source, dim
        self.config = config or VisitorConfig()
        self.keep = keep
        self.writer = writer or (MemoryWriter(gallery) if keep else NoWriter())
        self.close_after = close_after
        self.on_event = on_event
        self.clock = clock
        self.gallery = gallery
        self.sync_every = 30  # frames between looks at the gallery's memory counter (changes made elsewhere)
        self._tracks: dict[int, _Track] = {}
        self._load_index()
        self._refs = itertools.count(1)
        self._keys = itertools.count(-1, -1)
        self._tracker: Tracker | None = None
        self._frame = -1
        self._seen = 0
        self.closed_sightings = 0

    def _load_index(self) -> None:
        """The unknown faces remembered in the gallery, plus the open tracks' own faces;
        an open track whose visitor was merged or dismissed elsewhere looks again."""
        self.index = VisitorIndex(self.dim, self.config)
        faces, owners, ids = self.gallery.unknown_faces(self.model_id)
        for sid in dict.fromkeys(ids.tolist()):
            rows = ids == sid
            owner = int(owners[rows][0])
            self.index.add(faces[rows], owner if owner > 0 else None, ref=("db", sid))
        live = {v.id for v in self.gallery.visitors()}
        for track in self._tracks.values():
            if track.owner is not None and track.owner > 0 and track.owner not in live:
                track.owner = None
            if track.faces and track.owner is not None:
                self.index.add(track.embeddings(), track.owner, ref=("run", track.ref))
        self._revision = self.gallery.memory_revision()

    def _sync(self) -> None:
        """Reload the index when someone else changed the memory (a visitor named,
        merged or dismissed in another window or process); cheap otherwise."""
        try:
            revision = self.gallery.memory_revision()
            if revision not in (self._revision, self.writer.own_revision):
                logger.debug("%s: the gallery's memory changed elsewhere; reloading the visitors", self.source)
                self._load_index()
            self._revision = revision
        except FaceAppError as error:  # the gallery is busy or closed: try again later
            logger.debug("could not look at the gallery's memory: %s", error)

    # -- per frame -------------------------------------------------------------------------
    def observe(self, result: FrameResult, frame_index: int | None = None, file: str | None = None) -> FrameResult:
        """Remember the faces of one frame; the same result, each unknown face with its
        visitor (when known). ``file``: the photo of a folder (each face is then its own
        sighting)."""
        self._frame = self._frame + 1 if frame_index is None else frame_index  # the source's numbering
        self._seen += 1  # frames observed: what "not seen for close_after frames" counts (a looped video restarts its numbers)
        now = self.clock()
        if self._seen % self.sync_every == 0:
            self._sync()
        self._resolve_keys()
        faces = list(result.faces)
        ids = [f.track_id for f in faces]
        if file is None and faces and any(t is None for t in ids):  # tracking off: follow faces here
            self._tracker = self._tracker or Tracker()
            ids, ended = self._tracker.update(self._seen, [f.detection for f in faces])
            for tid in ended:
                self._close(tid)
        out = []
        for face, tid in zip(faces, ids):
            key = tid if file is None else ("photo", next(self._refs))
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = _Track(next(self._refs), now, self._frame, file)
            self._update(track, face, now)
            visitor = self._visible(track.owner) if face.match.name is None else None
            out.append(dataclasses.replace(face, visitor=visitor))
            self._announce(track, face, visitor, tid, now)
        if file is not None:  # photos: every face is a sighting of its own
            for key in [k for k in self._tracks if isinstance(k, tuple)]:
                self._close(key)
        else:
            for key in [k for k, t in self._tracks.items() if self._seen - t.last_index > self.close_after]:
                self._close(key)
        return dataclasses.replace(result, faces=tuple(out))

    def _update(self, track: _Track, face: FaceResult, now: float) -> None:
        track.last_seen, track.last_frame, track.last_index = now, self._frame, self._seen
        track.frames += 1
        track.names[face.match.name] += 1
        track.best_similarity = max(track.best_similarity, float(face.match.similarity))
        embedding = np.asarray(face.embedding, np.float32)
        if face.aligned is None or not np.any(embedding):
            return  # not embedded in this frame (tracking reuses the last embedding)
        quality = face_quality(face.detection)
        if quality > track.crop_quality:
            track.crop, track.crop_quality = face.aligned.picture, quality
        track.faces = sorted([*track.faces, (quality, embedding)], key=lambda item: -item[0])[:MAX_SIGHTING_EMBEDDINGS]
        if face.match.name is None and face.judged and track.owner is None:  # a stranger, not a poor view of anyone
            self._find_visitor(track, embedding)

    def _find_visitor(self, track: _Track, embedding: np.ndarray) -> None:
        owner, _ = self.index.who(embedding)
        if owner is not None:
            track.owner = owner
            self.writer.touch(owner)  # in view now: the retention keeps them
            return
        mine = track.embeddings()
        core = self.index.core_with(mine)  # earlier faces of this stranger, not clustered yet
        if core or (len(mine) >= self.config.min_faces and mutually_close(mine, self.config.join)):
            track.owner = self._new_visitor(mine, track.ref, core)

    def _new_visitor(self, faces: np.ndarray, ref: int, adopted: set) -> int:
        key = next(self._keys)
        self.writer.create_visitor(key)
        self.index.add(faces, key, ref=("run", ref))
        if adopted:
            self.index.adopt(adopted, key)
            self.writer.adopt(key, adopted)
        logger.debug("%s: a new unknown visitor (key %d)", self.source, key)
        return key

    def _visible(self, owner: int | None) -> int | None:
        if owner is None:
            return None
        return owner if owner > 0 else self.writer.resolved(owner)

    def _resolve_keys(self) -> None:
        for key, visitor in self.writer.take_resolved():
            self.index.rename(key, visitor)
            for track in self._tracks.values():
                if track.owner == key:
                    track.owner = visitor

    def _announce(self, track: _Track, face: FaceResult, visitor: int | None, tid, now: float) -> None:
        """One event when a track is first decided: a person (again when the name
        changes), or an unknown (with their visitor, if already known)."""
        if (face.aligned is None or not face.judged) and track.announced is None:
            return  # not recognised yet (or only seen in views too poor to judge)
        who = face.match.name or "unknown"
        if track.announced == who:
            return
        track.announced = who
        if self.on_event is not None:
            self.on_event(Appearance(self.source, now, self._frame, tid if isinstance(tid, int) else None, face.match.name,
                                     visitor, float(face.match.similarity), track.file))

    # -- closing ----------------------------------------------------------------------------
    def _close(self, key) -> None:
        track = self._tracks.pop(key, None)
        if track is None or not track.faces:
            return  # never embedded: nothing to remember it by
        named = [(n, c) for n, c in track.names.most_common() if n is not None]
        person = named[0][0] if named and named[0][1] * 2 >= track.frames else None
        owner = None if person else track.owner
        embeddings = track.embeddings()[:EMBEDDINGS_KEPT]
        thumbnail = None
        if track.crop is not None:
            from faceapp.media.imageio import encode_jpeg

            thumbnail = encode_jpeg(track.crop)
        sighting = NewSighting(
            person=person, visitor=owner, source=self.source, first_seen=track.first_seen, last_seen=track.last_seen,
            frames=track.frames, best_similarity=track.best_similarity, quality=max(track.crop_quality, 0.0),
            embeddings=embeddings, model_id=self.model_id, file=track.file, first_frame=track.first_frame,
            last_frame=track.last_frame if track.file is None else track.first_frame, thumbnail=thumbnail,
        )
        self.writer.submit(track.ref, sighting)
        if person is not None and track.owner is not None:
            self.writer.prune(track.owner)  # a visitor made for this track, which was someone after all
        if person is None:
            self.index.add(embeddings, owner, ref=("run", track.ref))
        self.closed_sightings += 1

    def close(self, timeout_s: float = 30.0) -> None:
        """Close every open track and write everything (waits for the writer)."""
        for key in list(self._tracks):
            self._close(key)
        self.writer.close(timeout_s)
