"""Saving enrollment samples to the gallery, asking first when the face is known.

Shared by the webcam enroll dialog and "add from photos". The gallery is written in one
call (one transaction), so a refusal or an error leaves it as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtWidgets import QWidget

from faceapp.gui.asker import Asker
from faceapp.gui.i18n import translate
from faceapp.recognition.enrollment import Sample, likely_person, stack_embeddings
from faceapp.recognition.pipeline import Recognizer
from faceapp.storage.gallery import Gallery, Person, normalize_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    """What was written: the person as stored now, and a line for the user."""

    person: Person
    message: str


def save_samples(
    gallery: Gallery,
    recognizer: Recognizer,
    name: str,
    samples: Sequence[Sample],
    asker: Asker,
    parent: QWidget | None = None,
) -> Saved | None:
    """Add ``samples`` as ``name`` (new or existing); None if the user cancelled.

    A name already in the gallery: ask to add the samples to that person. A new name
    whose face matches someone enrolled: ask to add to that person or create the new
    one anyway. Raises GalleryError (one line) when the gallery refuses.
    """
    name = normalize_name(name)
    if not samples:
        raise ValueError("no samples to save")
    templates = [sample.template(recognizer.embedder.model_id) for sample in samples]
    count = (translate("Saving", "1 sample") if len(templates) == 1 else
             translate("Saving", "{count} samples").format(count=len(templates)))
    if any(person.name == name for person in gallery.people()):
        add = translate("Saving", "Add to '{name}'").format(name=name)
        question = translate("Saving", "'{name}' is already in the gallery. Add these {count} to '{name}'?").format(name=name, count=count)
        answer = asker.choose(parent, translate("Saving", "Already enrolled"), question, [add, translate("Saving", "Cancel")])
        if answer != add:
            return None
        person = gallery.add_templates(name, templates)
        return Saved(person, translate("Saving", "added {count} to '{name}' (now {total})").format(
            count=count, name=person.name, total=person.template_count))
    similar = likely_person(recognizer.matcher(), stack_embeddings(samples))
    if similar is not None:
        add = translate("Saving", "Add to '{name}'").format(name=similar)
        create = translate("Saving", "Create '{name}' anyway").format(name=name)
        question = translate("Saving", "This face matches '{similar}' in the gallery. Add these {count} to '{similar}', "
                                       "or create '{name}' anyway?").format(similar=similar, count=count, name=name)
        answer = asker.choose(parent, translate("Saving", "Already enrolled?"), question, [add, create, translate("Saving", "Cancel")])
        if answer == add:
            person = gallery.add_templates(similar, templates)
            return Saved(person, translate("Saving", "added {count} to '{name}' (now {total})").format(
                count=count, name=person.name, total=person.template_count))
        if answer != create:
            return None
    person = gallery.add_person(name, templates)
    logger.info("enrolled %r with %d template(s)", person.name, person.template_count)
    return Saved(person, translate("Saving", "enrolled '{name}' with {count}").format(name=person.name, count=count))
