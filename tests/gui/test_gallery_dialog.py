"""The gallery manager: the store reflects every change made in the dialog; changes run
on the gallery thread, never on the GUI thread."""

from __future__ import annotations

import pytest

from faceapp.gui.dialogs.gallery import COUNT, NAME, GalleryDialog
from faceapp.storage.gallery import Gallery


@pytest.fixture
def dialog_for(qtbot, asker_factory, gallery_jobs):
    def make(gallery, **answers):
        asker = asker_factory(**answers)
        dialog = GalleryDialog(gallery, asker, poll_ms=50, jobs=gallery_jobs)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog, asker

    return make


def click(qtbot, dialog, button) -> None:
    """Click, then wait for the change to be made on the gallery thread."""
    button.click()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10_000)


def people(gallery):
    return {p.name: p.template_count for p in gallery.people()}


def test_lists_people_with_thumbnail_count_and_date(gallery_with, dialog_for):
    dialog, _ = dialog_for(gallery_with("obama", "biden"))
    assert dialog.visible_names() == ["biden", "obama"]
    assert dialog.table.item(1, COUNT).text() == "2"
    assert not dialog.table.item(0, NAME).icon().isNull()
    assert dialog.table.item(0, 2).text()[:2] == "20"
    dialog.filter_edit.setText("OBA")
    assert dialog.visible_names() == ["obama"]
    dialog.filter_edit.clear()
    assert dialog.select("obama") and dialog.templates.count() == 2


def test_rename_merge_and_delete(qtbot, gallery_with, dialog_for):
    gallery = gallery_with("obama", "biden")
    dialog, asker = dialog_for(gallery, text=["Joe"], pick=["obama"], confirm=[True, False, True])

    dialog.select("biden")
    click(qtbot, dialog, dialog.rename_button)
    assert people(gallery) == {"Joe": 1, "obama": 2}
    assert dialog.selected_name() == "Joe" and "renamed" in dialog.message.text()

    click(qtbot, dialog, dialog.merge_button)
    assert people(gallery) == {"obama": 3}
    assert dialog.visible_names() == ["obama"]

    dialog.select("obama")
    click(qtbot, dialog, dialog.delete_button)  # answered "no"
    assert people(gallery) == {"obama": 3}
    click(qtbot, dialog, dialog.delete_button)  # answered "yes"
    assert people(gallery) == {}
    assert dialog.visible_names() == []
    assert [kind for kind, _ in asker.asked] == ["text", "pick", "confirm", "confirm", "confirm"]


def test_delete_single_templates(qtbot, gallery_with, dialog_for):
    gallery = gallery_with("obama")
    dialog, _ = dialog_for(gallery, confirm=[True])
    dialog.select("obama")
    assert not dialog.delete_template_button.isEnabled()
    dialog.templates.item(0).setSelected(True)
    kept = dialog.templates.item(1).data(0x0100)
    click(qtbot, dialog, dialog.delete_template_button)
    assert [t.id for t in gallery.templates("obama")] == [kept]
    assert dialog.templates.count() == 1


def test_a_refused_change_is_one_line_and_changes_nothing(qtbot, gallery_with, dialog_for):
    gallery = gallery_with("obama", "biden")
    dialog, _ = dialog_for(gallery, text=["obama"])
    dialog.select("biden")
    click(qtbot, dialog, dialog.rename_button)
    assert "already in the gallery" in dialog.message.text()
    assert "\n" not in dialog.message.text()
    assert people(gallery) == {"biden": 1, "obama": 2}


def test_export_and_import_the_gallery(qtbot, gallery_with, dialog_for, tmp_path):
    archive = tmp_path / "export.zip"
    dialog, _ = dialog_for(gallery_with("obama", "biden"), save_file=[str(archive)], choose=["Export without encryption"])
    click(qtbot, dialog, dialog.export_button)
    assert archive.is_file() and "exported 2 people" in dialog.message.text()

    with Gallery(tmp_path / "other.sqlite3") as other:
        other_dialog, _ = dialog_for(other, open_file=[str(archive), str(archive)], choose=["Skip that person"])
        click(qtbot, other_dialog, other_dialog.import_button)
        assert people(other) == {"biden": 1, "obama": 2}
        assert "imported 2 new people" in other_dialog.message.text()
        click(qtbot, other_dialog, other_dialog.import_button)  # again: conflicts are skipped, as chosen
        assert people(other) == {"biden": 1, "obama": 2}
        assert "skipped 2" in other_dialog.message.text()
        other_dialog.close()


def test_changes_made_elsewhere_appear(qtbot, gallery_with, dialog_for):
    gallery = gallery_with("obama")
    dialog, _ = dialog_for(gallery)
    gallery.rename("obama", "Barack")
    qtbot.waitUntil(lambda: dialog.visible_names() == ["Barack"], timeout=5000)


def test_changes_run_off_the_gui_thread(qtbot, gallery_with, dialog_for, monkeypatch):
    import threading

    from faceapp.storage.gallery import Gallery as GalleryClass

    gallery = gallery_with("obama", "biden")
    where = []
    original = GalleryClass.remove
    monkeypatch.setattr(GalleryClass, "remove", lambda self, name: where.append(threading.current_thread()) or original(self, name))
    dialog, _ = dialog_for(gallery, confirm=[True])
    dialog.select("biden")
    dialog.delete_button.click()
    assert dialog.busy and not dialog.rename_button.isEnabled()  # disabled while the change runs
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10_000)
    assert where and where[0] is not threading.main_thread()
    assert people(gallery) == {"obama": 2} and dialog.visible_names() == ["obama"]
