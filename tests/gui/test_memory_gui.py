"""People memory in the desktop app (issue 14), with the fake camera: the overlay's
"Unknown #N", the In view, Timeline and Unknown visitors panels, naming a visitor from
the panel, the gallery dialog's "last seen", and alerts."""

from __future__ import annotations

import pytest

from faceapp.gui.dialogs.gallery import LAST_SEEN, NAME, GalleryDialog
from faceapp.recognition.alerts import AlertChoice

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def obama_frames(fixtures_dir):
    from faceapp.media.fixture_video import Scene, render_frames

    return [frame for frame, _ in render_frames(fixtures_dir, (Scene("obama/obama_1.jpg", (), 12),))]


def test_a_stranger_becomes_a_visitor_shown_in_the_panels_and_is_named_there(
        qtbot, make_window, gallery_with, biden_frames, obama_frames, camera_factory, settings, asker_factory):
    gallery = gallery_with("obama")
    settings.alerts = AlertChoice(who="unknown", cooldown_s=3600, notify=False)
    window = make_window(opener=lambda spec: camera_factory(biden_frames if spec.value == "0" else obama_frames).open(),
                         asker=asker_factory())
    window.open_source_text("0")
    # Biden is unknown to this gallery: after a few looks he is a remembered visitor.
    qtbot.waitUntil(lambda: bool(window.view.overlay_names()) and window.view.overlay_names()[0].startswith("Unknown #"),
                    timeout=WAIT_MS)
    label = window.view.overlay_names()[0]
    visitor = int(label.split("#")[1])
    window.in_view_dock.show_packet(window.controller.latest, force=True)
    assert window.in_view_dock.labels()[0].startswith(f"{label}  since ")
    # The unknown-face alert fired (the status line shows it too); once he is a visitor,
    # the cool-down is his.
    qtbot.waitUntil(lambda: len(window.alerts.fired) >= 1, timeout=WAIT_MS)
    assert all(e["person"] is None for e in window.alerts.fired)
    assert sum(1 for e in window.alerts.fired if e["visitor"] == visitor) <= 1
    # Another source: Biden's track ends and becomes a sighting in the timeline.
    window.open_source_text("1")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["obama"], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: any(s.visitor == visitor for s in gallery.sightings()), timeout=WAIT_MS)
    window.timeline_dock.refresh()
    assert any(label in text for text in window.timeline_dock.labels())
    window.unknowns_dock.refresh()
    assert window.unknowns_dock.visitor_ids() == [visitor]
    # "Name…" in the visitors panel enrolls him from his crops; then he is named live.
    job = window.unknowns_dock.name_visitor(visitor, "biden")
    assert job is not None
    qtbot.waitUntil(lambda: "biden" in {p.name for p in gallery.people()}, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.unknowns_dock.visitor_ids() == [], timeout=WAIT_MS)
    assert any(s.person == "biden" for s in gallery.sightings()) and not any(s.visitor == visitor for s in gallery.sightings())
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    # Obama was seen today: the gallery dialog says when.
    window.open_source_text("1")  # ends Biden's track (a sighting of biden now)
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["obama"], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "obama" in gallery.last_seen(), timeout=WAIT_MS)
    dialog = GalleryDialog(gallery, asker_factory(), poll_ms=50)
    qtbot.addWidget(dialog)
    rows = {dialog.table.item(r, NAME).text(): dialog.table.item(r, LAST_SEEN).text() for r in range(dialog.table.rowCount())}
    assert rows["obama"][:2] == "20"
    dialog.close()


def test_no_sightings_when_remembering_is_off(qtbot, make_window, gallery_with, biden_frames, camera_factory, settings):
    gallery = gallery_with("obama")
    settings.remember = False
    window = make_window(opener=camera_factory(biden_frames).open)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Unknown"], timeout=WAIT_MS)
    qtbot.wait(1500)  # long enough to found a visitor if it were on
    assert window.view.overlay_names() == ["Unknown"]
    window.close()
    assert gallery.sightings() == [] and gallery.visitors() == []


def test_the_face_menu_offers_naming_a_visitor(qtbot, make_window, gallery_with, biden_frames, camera_factory, asker_factory):
    gallery_with("obama")
    window = make_window(opener=camera_factory(biden_frames).open, asker=asker_factory(text=["Joe Biden"]))
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.result is not None and bool(window.view.result.faces)
                    and window.view.result.faces[0].visitor is not None, timeout=WAIT_MS)
    face = window.view.result.faces[0]
    (label, action), = window.face_menu.actions_for(face)
    assert label == "Name this person…"
    assert action() is not None
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Joe Biden"], timeout=WAIT_MS)


def test_timeline_corrections(qtbot, make_window, gallery_with, biden_frames, camera_factory, asker_factory, recognizer):
    import time

    import numpy as np

    from faceapp.storage.memory import NewSighting

    gallery = gallery_with("obama", "biden")
    now = time.time()
    obama = gallery.templates("obama")[0]
    made = gallery.record([NewSighting("biden", None, "door", now, now + 2, 5, 0.45, 0.9, obama.embedding[None],
                                       recognizer.embedder.model_id, thumbnail=obama.thumbnail)])
    (sighting,) = made.ids
    window = make_window(opener=camera_factory(biden_frames).open, asker=asker_factory())
    timeline = window.timeline_dock
    timeline.refresh()
    assert any("biden" in text for text in timeline.labels())
    assert [label for label, _ in timeline.actions_for(sighting)] == ["Not biden", "This is…"]
    # Not biden: a "not them" face for Biden, and the sighting is an unknown again.
    timeline.mark_not(sighting)
    qtbot.waitUntil(lambda: gallery.sighting(sighting).person is None, timeout=WAIT_MS)
    assert gallery.person("biden").negative_count == 1
    # This is obama: given to him (his own crop passes the quality gate: a template more).
    before = gallery.person("obama").template_count
    timeline.this_is(sighting, "obama")
    qtbot.waitUntil(lambda: gallery.sighting(sighting).person == "obama", timeout=WAIT_MS)
    assert gallery.person("obama").template_count in (before, before + 1)
    assert np.allclose(gallery.sighting(sighting).embeddings[0], obama.embedding)


def test_the_settings_set_the_retention_and_the_alert(qtbot, make_window, gallery_with, asker_factory, settings):
    gallery = gallery_with("obama")
    window = make_window(asker=asker_factory())
    dialog = window.open_settings_dialog()
    assert dialog.retention.value() == 30 and dialog.alert_who.currentData() == ""
    assert dialog.alert_who.findData("obama") >= 0  # enrolled people are offered as alert targets
    dialog.retention.setValue(7)
    dialog.alert_who.setCurrentIndex(dialog.alert_who.findData("obama"))
    dialog.alert_cooldown.setValue(5)
    dialog.accept()
    qtbot.waitUntil(lambda: gallery.retention_days == 7, timeout=WAIT_MS)
    assert settings.alerts == AlertChoice("obama", 5.0, True, False, "", "")
    assert window.alerts.choice.who == "obama"
