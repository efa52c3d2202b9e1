"""Corrections on a sighting in the timeline panel: "Not NAME" (a "not them" template for
that person, and the sighting becomes an unknown again) and "This is…" (the sighting is
given to someone, its crop added through the enrollment quality gate). "Not NAME" runs
on the gallery thread; "This is…" on the recognition thread, which owns the models."""

from __future__ import annotations

from PySide6.QtCore import Qt

from faceapp.errors import FaceAppError
from faceapp.gui.i18n import translate
from faceapp.gui.workers.jobs import describe


class JobMessages:
    """A panel's jobs (``_jobs``: job id -> what to say when done); mixed in."""

    def _done(self, job_id: int, _result: object) -> None:
        message = self._jobs.pop(job_id, None)
        if message is not None:
            self.window.say(message)
            self.refresh()
            self._after_job()

    def _failed(self, job_id: int, error: BaseException) -> None:
        if self._jobs.pop(job_id, None) is not None:
            self.window.say(describe(error))
            self._after_job()

    def _after_job(self) -> None:
        """Called after each job's outcome (e.g. to enable buttons again)."""


class TimelineActions(JobMessages):
    """Mixed into the timeline panel (which has ``window``, ``list``, ``refresh`` and ``_jobs``)."""

    def actions_for(self, sighting_id: int) -> list[tuple[str, object]]:
        sighting = self.window.gallery.sighting(sighting_id)
        actions = []
        if sighting.person:
            actions.append((translate("Docks", "Not {name}").format(name=sighting.person), lambda: self.mark_not(sighting_id)))
        actions.append((translate("Docks", "This is…"), lambda: self.this_is(sighting_id)))
        return actions

    def _menu(self, position) -> None:
        from PySide6.QtWidgets import QMenu

        item = self.list.itemAt(position)
        if item is None:
            return
        try:
            actions = self.actions_for(int(item.data(Qt.ItemDataRole.UserRole)))
        except FaceAppError as error:
            self.window.say(describe(error))
            return
        self.menu = QMenu(self.list)
        for label, slot in actions:
            self.menu.addAction(label, slot)
        self.menu.popup(self.list.mapToGlobal(position))

    def mark_not(self, sighting_id: int) -> int:
        """The sighting is not its person: a "not them" template, and an unknown again."""
        gallery = self.window.gallery
        sighting = gallery.sighting(sighting_id)
        job = self.window.controller.gallery_jobs.submit(lambda: gallery.unassign(sighting_id))
        self._jobs[job] = translate("Docks", "Stored: that face is not {name}.").format(name=sighting.person)
        return job

    def this_is(self, sighting_id: int, name: str | None = None) -> int | None:
        """The sighting is ``name`` (asked when not given): given to them, its crop added."""
        from faceapp.recognition.corrections import give_sightings

        if name is None:
            name = self.window.asker.text(self, translate("Docks", "Who is this?"), translate("Docks", "Name"))
        if not name or not name.strip():
            return None
        gallery, name = self.window.gallery, name.strip()
        sighting = gallery.sighting(sighting_id)
        job = self.window.controller.submit(
            lambda recognizer, _cancelled: give_sightings(gallery, recognizer, [sighting], name, wrong=sighting.person))
        self._jobs[job] = translate("Docks", "That sighting is {name} now.").format(name=name)
        return job
