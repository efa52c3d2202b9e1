"""The gallery manager: the store reflects every change made in the dialog."""

from __future__ import annotations

import pytest

from faceapp.gui.dialogs.gallery import COUNT, NAME, GalleryDialog
from faceapp.storage.gallery import Gallery


@pytest.fixture
def dialog_for(qtbot, asker_factory):
    def make(gallery, **answers):
        asker = asker_factory(**answers)
        dialog = GalleryDialog(gallery, asker, poll_ms=50)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog, asker

    return make


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


def test_rename_merge_and_delete(gallery_with, dialog_for):
    gallery = gallery_with("obama", "biden")
    dialog, asker = dialog_for(gallery, text=["Joe"], pick=["obama"], confirm=[True, False, True])

    dialog.select("biden")
    dialog.rename_button.click()
    assert people(gallery) == {"Joe": 1, "obama": 2}
    assert dialog.selected_name() == "Joe" and "renamed" in dialog.message.text()

    dialog.merge_button.click()
    assert people(gallery) == {"obama": 3}
    assert dialog.visible_names() == ["obama"]

    dialog.select("obama")
    dialog.delete_button.click()  # answered "no"
    assert people(gallery) == {"obama": 3}
    dialog.delete_button.click()  # answered "yes"
    assert people(gallery) == {}
    assert dialog.visible_names() == []
    assert [kind for kind, _ in asker.asked] == ["text", "pick", "confirm", "confirm", "confirm"]


def test_delete_single_templates(gallery_with, dialog_for):
    gallery = gallery_with("obama")
    dialog, _ = dialog_for(gallery, confirm=[True])
    dialog.select("obama")
    assert not dialog.delete_template_button.isEnabled()
    dialog.templates.item(0).setSelected(True)
    kept = dialog.templates.item(1).data(0x0100)
    dialog.delete_template_button.click()
    assert [t.id for t in gallery.templates("obama")] == [kept]
    assert dialog.templates.count() == 1


def test_a_refused_change_is_one_line_and_changes_nothing(gallery_with, dialog_for):
    gallery = gallery_with("obama", "biden")
    dialog, _ = dialog_for(gallery, text=["obama"])
    dialog.select("biden")
    dialog.rename_button.click()
    assert "already in the gallery" in dialog.message.text()
    assert "\n" not in dialog.message.text()
    assert people(gallery) == {"biden": 1, "obama": 2}


def test_export_and_import_the_gallery(gallery_with, dialog_for, tmp_path):
    archive = tmp_path / "export.zip"
    dialog, _ = dialog_for(gallery_with("obama", "biden"), save_file=[str(archive)], choose=["Export without encryption"])
    dialog.export_button.click()
    assert archive.is_file() and "exported 2 people" in dialog.message.text()

    with Gallery(tmp_path / "other.sqlite3") as other:
        other_dialog, _ = dialog_for(other, open_file=[str(archive), str(archive)], choose=["Skip that person"])
        other_dialog.import_button.click()
        assert people(other) == {"biden": 1, "obama": 2}
        assert "imported 2 new people" in other_dialog.message.text()
        other_dialog.import_button.click()  # again: conflicts are skipped, as chosen
        assert people(other) == {"biden": 1, "obama": 2}
        assert "skipped 2" in other_dialog.message.text()
        other_dialog.close()


def test_changes_made_elsewhere_appear(qtbot, gallery_with, dialog_for):
    gallery = gallery_with("obama")
    dialog, _ = dialog_for(gallery)
    gallery.rename("obama", "Barack")
    qtbot.waitUntil(lambda: dialog.visible_names() == ["Barack"], timeout=5000)
