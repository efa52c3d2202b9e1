"""The context menu of a face in the live view: "Not NAME".

Right-clicking a named face offers "Not NAME": the face's embedding (and its crop, unless
the gallery is embeddings-only) is stored as one of NAME's *negative* templates, so this
look-alike is no longer given the name (see :mod:`faceapp.recognition.matching`). A
face that looks like NAME themselves is stored only after the user confirms. The write
runs on the controller's gallery thread; the recognizer picks the change up at the next
frame (the gallery's revision), and every track is decided afresh.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QMenu

from faceapp.gui.i18n import translate
from faceapp.gui.workers.jobs import describe
from faceapp.recognition.decision import looks_like_them, same_person_level
from faceapp.storage.gallery import Gallery, NewTemplate
from faceapp.types import FaceResult

if TYPE_CHECKING:
    from faceapp.gui.asker import Asker
    from faceapp.gui.video_view import VideoView
    from faceapp.gui.workers.controller import LiveController
    from faceapp.recognition.pipeline import Recognizer

logger = logging.getLogger(__name__)


class FaceMenuWindow(Protocol):
    """What the menu needs of its window (the main window)."""

    gallery: Gallery
    recognizer: Recognizer
    controller: LiveController
    asker: Asker
    view: VideoView

    def say(self, text: object, ms: int = 8000) -> None: ...


class FaceMenu:
    """Shows the menu of a right-clicked face and carries out its actions."""

    def __init__(self, window: FaceMenuWindow) -> None:
        self.window = window
        self._jobs: dict[int, str] = {}  # job id -> the person's name
        window.view.faceMenuRequested.connect(self.popup)
        jobs = window.controller.gallery_jobs
        jobs.finished.connect(self._finished)
        jobs.failed.connect(self._failed)
        self.menu: QMenu | None = None

    def actions_for(self, face: FaceResult) -> list[tuple[str, object]]:
        """(label, callable) for each action the face offers: "Not NAME" on a named face,
        "Name this person…" on a remembered unknown visitor."""
        name = face.match.name
        if name is not None:
            return [(translate("FaceMenu", "Not {name}").format(name=name), lambda: self.mark_not(face, name))]
        if face.visitor is not None:
            return [(translate("FaceMenu", "Name this person…"), lambda: self.name_visitor(face.visitor))]
        return []

    def name_visitor(self, visitor: int) -> int | None:
        """Ask a name for unknown visitor ``visitor`` and enroll them (the visitors panel does it)."""
        dock = getattr(self.window, "unknowns_dock", None)
        if dock is None:
            return None
        name = self.window.asker.text(self.window.view, translate("FaceMenu", "Name this person"),
                                      translate("FaceMenu", "Who is Unknown #{number}?").format(number=visitor))
        return dock.name_visitor(visitor, name.strip()) if name and name.strip() else None

    def popup(self, face: FaceResult, position: QPoint) -> QMenu | None:
        actions = self.actions_for(face)
        if not actions:
            return None
        self.menu = QMenu(self.window.view)
        for label, slot in actions:
            self.menu.addAction(label, slot)
        self.menu.popup(position)
        return self.menu

    def mark_not(self, face: FaceResult, name: str) -> int | None:
        """Store ``face`` as not ``name``; the job id, or None when nothing was queued."""
        window = self.window
        embedding = np.asarray(face.embedding, np.float32)
        if not np.any(embedding):
            window.say(translate("FaceMenu", "This face has not been recognised yet; try again in a moment."))
            return None
        recognizer = window.recognizer
        own = recognizer.last_matcher.templates_of(name)  # no gallery read on the GUI thread
        why = looks_like_them(own, embedding[None], same_person_level(recognizer.calibration, recognizer.card.threshold_presets))
        if why and not window.asker.confirm(
            window.view, translate("FaceMenu", "Not {name}?").format(name=name),
            translate("FaceMenu", "This face looks like {name} themselves ({why}). Store it as not {name} anyway?").format(name=name, why=why),
        ):
            return None
        thumbnail = None
        if face.aligned is not None:
            from faceapp.media.imageio import encode_jpeg

            thumbnail = encode_jpeg(face.aligned.picture)
        template = NewTemplate(embedding, recognizer.embedder.model_id, thumbnail=thumbnail, source="live view")
        gallery = window.gallery
        job = window.controller.gallery_jobs.submit(lambda: gallery.add_negatives(name, [template]))
        self._jobs[job] = name
        return job

    def _finished(self, job_id: int, person) -> None:
        name = self._jobs.pop(job_id, None)
        if name is not None:
            self.window.say(translate("FaceMenu", "Stored: this face is not {name} ({count} face(s) marked so far).").format(
                name=name, count=person.negative_count))

    def _failed(self, job_id: int, error: BaseException) -> None:
        name = self._jobs.pop(job_id, None)
        if name is not None:
            self.window.say(translate("FaceMenu", "Could not store the face as not {name}: {error}").format(name=name, error=describe(error)))
