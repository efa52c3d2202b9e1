"""The gallery manager: people with a thumbnail, template count and date added.

Filter by name; rename, merge, delete a person (after confirmation), delete single
templates (faces marked "not them" are listed too), set a person's own threshold; export and import the gallery as a zip (:mod:`faceapp.storage.archive`), optionally
encrypted with a passphrase. A template without a thumbnail (always, in an
embeddings-only gallery) shows the person's initials instead. Every change
is one gallery transaction; the live window picks it up at once through the gallery's
revision counter, and this dialog polls that counter to show changes made elsewhere.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QT_TRANSLATE_NOOP, QSize, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceapp.errors import FaceAppError
from faceapp.gui.asker import Asker
from faceapp.gui.dialogs.person_threshold import ThresholdField
from faceapp.gui.images import icon_from_bytes, initials_icon
from faceapp.gui.passphrase import Cancelled, ask_new_passphrase
from faceapp.gui.workers.jobs import JobRunner, describe
from faceapp.media.privacy import initials
from faceapp.storage.archive import archive_is_encrypted, export_gallery, import_gallery
from faceapp.storage.crypto import PassphraseError
from faceapp.storage.gallery import Gallery, Person, Template

logger = logging.getLogger(__name__)

ICON = 48
ZIP_FILTER = "FaceApp gallery (*.zip);;All files (*)"
NAME, COUNT, ADDED, LAST_SEEN = range(4)
#: Item data role holding the initials drawn instead of a thumbnail ("" when a thumbnail is shown).
INITIALS_ROLE = Qt.ItemDataRole.UserRole + 1
ENCRYPT = QT_TRANSLATE_NOOP("GalleryDialog", "Encrypt with a passphrase")
PLAIN = QT_TRANSLATE_NOOP("GalleryDialog", "Export without encryption")


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


class GalleryDialog(QDialog):
    """Lists and edits the people of ``gallery``. ``add_photos`` (optional) is called
    with a person's name (or "") and this dialog, to open "add from photos" over it."""

    def __init__(self, gallery: Gallery, asker: Asker, add_photos=None, poll_ms: int = 1000, jobs: JobRunner | None = None,
                 parent: QWidget | None = None, offered_threshold: float | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Gallery — {path}").format(path=gallery.path))
        # Changes run off the GUI thread: on the window's gallery thread, or on our own.
        self._own_jobs = jobs is None
        self._jobs = jobs or JobRunner("faceapp-gallery-dialog", parent=self)
        self._job: tuple[int, Callable[[Any], None], Callable[[BaseException], bool] | None] | None = None
        self._jobs.finished.connect(self._job_finished)
        self._jobs.failed.connect(self._job_failed)
        self._gallery = gallery
        self._asker = asker
        self._add_photos = add_photos
        self._revision: int | None = None
        self._people: list[Person] = []
        self._templates: dict[int, list[Template]] = {}
        self._last_seen: dict[str, float] = {}
        self.embeddings_only = False

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText(self.tr("Filter by name"))
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._fill_table)

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels([self.tr("Name"), self.tr("Templates"), self.tr("Added"), self.tr("Last seen")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(ICON, ICON))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(ICON + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COUNT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ADDED, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(LAST_SEEN, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._fill_templates)

        self.templates = QListWidget()
        self.templates.setViewMode(QListView.ViewMode.IconMode)
        self.templates.setIconSize(QSize(80, 80))
        self.templates.setMovement(QListView.Movement.Static)
        self.templates.setResizeMode(QListView.ResizeMode.Adjust)
        self.templates.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.templates.itemSelectionChanged.connect(self._update_buttons)
        self.templates_label = QLabel(self.tr("Templates"))

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.templates_label)
        right_layout.addWidget(self.templates, 1)
        self.delete_template_button = QPushButton(self.tr("Delete template"))
        self.delete_template_button.clicked.connect(self.delete_selected_templates)
        right_layout.addWidget(self.delete_template_button)
        self.threshold_field = ThresholdField(offered=offered_threshold)
        self.threshold_field.changed.connect(self.set_own_threshold)
        right_layout.addWidget(self.threshold_field)

        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        self.rename_button = QPushButton(self.tr("Rename…"))
        self.rename_button.clicked.connect(self.rename_selected)
        self.merge_button = QPushButton(self.tr("Merge into…"))
        self.merge_button.clicked.connect(self.merge_selected)
        self.delete_button = QPushButton(self.tr("Delete…"))
        self.delete_button.clicked.connect(self.delete_selected)
        self.add_photos_button = QPushButton(self.tr("Add photos…"))
        self.add_photos_button.clicked.connect(self._on_add_photos)
        self.add_photos_button.setVisible(add_photos is not None)
        self.import_button = QPushButton(self.tr("Import…"))
        self.import_button.clicked.connect(self.import_archive)
        self.export_button = QPushButton(self.tr("Export…"))
        self.export_button.clicked.connect(self.export_archive)
        close_button = QPushButton(self.tr("Close"))
        close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        for button in (self.rename_button, self.merge_button, self.delete_button, self.add_photos_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.import_button, self.export_button, close_button):
            buttons.addWidget(button)

        self.message = QLabel()
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.filter_edit)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.resize(760, 480)

        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh_if_changed)
        self._timer.start()
        self.refresh()

    # -- reading ----------------------------------------------------------------------------
    def refresh_if_changed(self) -> None:
        try:
            if self._gallery.revision() != self._revision:
                self.refresh()
        except FaceAppError as error:
            self._say(error)

    def refresh(self) -> None:
        """Reload people and templates from the gallery (one consistent snapshot)."""
        try:
            self._revision = self._gallery.revision()
            people, templates = self._gallery.snapshot()
            self.embeddings_only = self._gallery.embeddings_only
            self._last_seen = self._gallery.last_seen()
        except FaceAppError as error:
            self._say(error)
            return
        self._people = people
        self._templates = {}
        for template in templates:
            self._templates.setdefault(template.person_id, []).append(template)
        self._fill_table()

    def visible_names(self) -> list[str]:
        """The names listed now (after the filter), in order."""
        return [self.table.item(row, NAME).text() for row in range(self.table.rowCount())]

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.table.item(rows[0].row(), NAME).text() if rows else None

    def select(self, name: str) -> bool:
        """Select ``name`` in the list; False if it is not shown."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, NAME).text() == name:
                self.table.selectRow(row)
                return True
        return False

    def _fill_table(self) -> None:
        keep = self.selected_name()
        needle = self.filter_edit.text().strip().casefold()
        shown = [p for p in self._people if needle in p.name.casefold()]
        self.table.setRowCount(len(shown))
        for row, person in enumerate(shown):
            templates = self._templates.get(person.id, [])
            thumbnail = next((t.thumbnail for t in templates if t.thumbnail), None)
            name = QTableWidgetItem(person.name)
            self._set_icon(name, thumbnail, person.name, ICON)
            count = QTableWidgetItem(str(person.template_count))
            count.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.table.setItem(row, NAME, name)
            self.table.setItem(row, COUNT, count)
            self.table.setItem(row, ADDED, QTableWidgetItem(_when(person.created_at)))
            seen = self._last_seen.get(person.name)
            self.table.setItem(row, LAST_SEEN, QTableWidgetItem(_when(seen) if seen is not None else self.tr("never")))
        if not (keep and self.select(keep)):
            self.table.clearSelection()
        self._fill_templates()

    def _fill_templates(self) -> None:
        self.templates.clear()
        name = self.selected_name()
        person = next((p for p in self._people if p.name == name), None)
        self.templates_label.setText(self.tr("Templates of {name}").format(name=name) if person else self.tr("Templates (select a person)"))
        if person is not None:
            for template in self._templates.get(person.id, []):
                negative = template.kind == "negative"
                item = QListWidgetItem((self.tr("not them") + " " if negative else "") + _when(template.created_at)[5:])
                self._set_icon(item, template.thumbnail, person.name, 80)
                item.setData(Qt.ItemDataRole.UserRole, template.id)
                tip = self.tr("from {source}; quality {quality:.2f}").format(source=template.source or self.tr("unknown"),
                                                                               quality=template.quality)
                item.setToolTip(self.tr("Not {name}: a face that is not given this name; ").format(name=person.name) + tip
                                if negative else tip)
                self.templates.addItem(item)
        self.threshold_field.show_person(person)
        self._update_buttons()

    def _set_icon(self, item, thumbnail: bytes | None, name: str, size: int) -> None:
        """The thumbnail, or the person's initials when there is none to show."""
        icon = QIcon() if self.embeddings_only else icon_from_bytes(thumbnail, size)
        shown = "" if not icon.isNull() else initials(name)
        item.setIcon(initials_icon(name, size) if shown else icon)
        item.setData(INITIALS_ROLE, shown)

    def _update_buttons(self) -> None:
        has_person = self.selected_name() is not None
        for button in (self.rename_button, self.merge_button, self.delete_button):
            button.setEnabled(has_person)
        self.merge_button.setEnabled(has_person and len(self._people) > 1)
        self.delete_template_button.setEnabled(bool(self.templates.selectedItems()))

    def _say(self, text: object) -> None:
        self.message.setText(" ".join(str(text).split()))

    # -- changes ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a change is running on the gallery thread."""
        return self._job is not None

    def _change(self, action: Callable[[], Any], success: str | Callable[[Any], str], then: Callable[[], None] | None = None,
                on_error: Callable[[BaseException], bool] | None = None) -> int | None:
        """Run one gallery change off the GUI thread; then show its outcome (or its
        error) on one line and reload. ``on_error`` may handle an error itself (True)."""
        if self.busy:
            self._say(self.tr("Please wait: the last change is still being made."))
            return None

        def done(result: Any) -> None:
            self._say(success(result) if callable(success) else success)
            self.refresh()
            if then is not None:
                then()

        job_id = self._jobs.submit(action)
        self._job = (job_id, done, on_error)
        self._set_buttons_enabled(False)
        self._say(self.tr("Working…"))
        return job_id

    def _job_finished(self, job_id: int, result: Any) -> None:
        if self._job is None or self._job[0] != job_id:
            return
        _, done, _ = self._job
        self._job = None
        self._set_buttons_enabled(True)
        done(result)

    def _job_failed(self, job_id: int, error: BaseException) -> None:
        if self._job is None or self._job[0] != job_id:
            return
        _, _, on_error = self._job
        self._job = None
        self._set_buttons_enabled(True)
        if on_error is not None and on_error(error):
            return
        self._say(describe(error))
        self.refresh()

    def _set_buttons_enabled(self, enabled: bool) -> None:
        for button in (self.import_button, self.export_button, self.add_photos_button):
            button.setEnabled(enabled)
        if enabled:
            self._update_buttons()
        else:
            for button in (self.rename_button, self.merge_button, self.delete_button, self.delete_template_button):
                button.setEnabled(False)

    def done(self, result: int) -> None:
        self._stop_jobs()
        super().done(result)

    def closeEvent(self, event) -> None:
        self._stop_jobs()
        super().closeEvent(event)

    def _stop_jobs(self) -> None:
        self._timer.stop()
        if self._own_jobs:
            self._jobs.shutdown()  # a change under way is finished, never cut in half

    def rename_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        new = self._asker.text(self, self.tr("Rename"), self.tr("New name for '{name}':").format(name=name), name)
        if new is None or new.strip() == name:
            return
        self._change(lambda: self._gallery.rename(name, new), self.tr("renamed '{old}' to '{new}'").format(old=name, new=new.strip()),
                     lambda: self.select(new.strip()))

    def merge_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        others = [p.name for p in self._people if p.name != name]
        target = self._asker.pick(self, self.tr("Merge"), self.tr("Move all templates of '{name}' to:").format(name=name), others)
        if target is None:
            return
        if not self._asker.confirm(self, self.tr("Merge"), self.tr("Merge '{name}' into '{target}'? '{name}' will be removed.").format(
                name=name, target=target)):
            return
        self._change(lambda: self._gallery.merge(name, target), self.tr("merged '{name}' into '{target}'").format(name=name, target=target),
                     lambda: self.select(target))

    def delete_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        person = next(p for p in self._people if p.name == name)
        question = self.tr("Delete '{name}' and their {count} template(s)? This cannot be undone.").format(
            name=name, count=person.template_count)
        if not self._asker.confirm(self, self.tr("Delete person"), question):
            return
        self._change(lambda: self._gallery.remove(name), self.tr("deleted '{name}'").format(name=name))

    def delete_selected_templates(self) -> None:
        ids = [item.data(Qt.ItemDataRole.UserRole) for item in self.templates.selectedItems()]
        name = self.selected_name()
        if not ids or name is None:
            return
        count = self.tr("1 template") if len(ids) == 1 else self.tr("{count} templates").format(count=len(ids))
        if not self._asker.confirm(self, self.tr("Delete templates"), self.tr("Delete {count} of '{name}'?").format(count=count, name=name)):
            return

        self._change(lambda: self._gallery.remove_templates([int(i) for i in ids]), self.tr("deleted {count} of '{name}'").format(count=count, name=name),
                     lambda: self.select(name))

    def export_archive(self) -> None:
        path = self._asker.save_file(self, self.tr("Export the gallery"), "faceapp-gallery.zip", ZIP_FILTER)
        if not path:
            return
        answer = self._asker.choose(
            self, self.tr("Export"), self.tr("Encrypt the exported file? Anyone with the file can read an unencrypted export."),
            [self.tr(ENCRYPT), self.tr(PLAIN), self.tr("Cancel")]
        )
        if answer not in (self.tr(ENCRYPT), self.tr(PLAIN)):
            return
        passphrase = None
        if answer == self.tr(ENCRYPT):
            try:
                passphrase = ask_new_passphrase(self._asker, self, self.tr("Encrypt the export"), self.tr("Passphrase for the exported file"))
            except Cancelled:
                return
            except FaceAppError as error:  # empty, or the two differ
                self._say(error)
                return
        done = (self.tr("exported {count} people to {path} (encrypted)") if passphrase else
                self.tr("exported {count} people to {path}")).format(count=len(self._people), path=path)
        self._change(lambda: export_gallery(self._gallery, path, passphrase=passphrase), done)

    def import_archive(self) -> None:
        path = self._asker.open_file(self, self.tr("Import a gallery"), ZIP_FILTER)
        if not path:
            return
        on_conflict = "error"
        if self._people:
            merge, skip = self.tr("Merge their templates"), self.tr("Skip that person")
            answer = self._asker.choose(self, self.tr("Import"), self.tr("When a name in the file is already in the gallery:"),
                                        [merge, skip, self.tr("Cancel")])
            if answer not in (merge, skip):
                return
            on_conflict = "merge" if answer == merge else "skip"
        self._import(path, on_conflict, "")

    def _import(self, path: str, on_conflict: str, problem: str) -> None:
        """Import ``path`` as a job; an encrypted file's passphrase is asked again while wrong."""
        passphrase = None
        if archive_is_encrypted(path):
            label = self.tr("This file is encrypted. Passphrase:")
            passphrase = self._asker.password(self, self.tr("Import"), f"{problem}\n\n{label}" if problem else label)
            if passphrase is None:
                return

        def summary(result) -> str:
            return self.tr("imported {added} new people, merged {merged}, skipped {skipped}; {templates} template(s) added").format(
                added=result.people_added, merged=result.people_merged, skipped=result.people_skipped, templates=result.templates_added)

        def wrong_passphrase(error: BaseException) -> bool:
            if not isinstance(error, PassphraseError) or passphrase is None:
                return False
            again = self.tr("Wrong passphrase.") if passphrase else self.tr("The passphrase cannot be empty.")
            self._say(self.tr("{problem} Nothing was imported.").format(problem=again))
            self._import(path, on_conflict, again)
            return True

        self._change(lambda: import_gallery(self._gallery, path, on_conflict=on_conflict, passphrase=passphrase or None),
                     summary, on_error=wrong_passphrase)

    def set_own_threshold(self, value: float | None) -> int | None:
        """Give the selected person their own threshold, or (None) the automatic one."""
        name = self.selected_name()
        if name is None:
            return None
        gallery = self._gallery
        message = (self.tr("{name} has the automatic threshold again.").format(name=name) if value is None else
                   self.tr("{name} is named only at a similarity of {value} or more.").format(name=name, value=f"{value:.3f}"))
        return self._change(lambda: gallery.set_threshold(name, value), message)

    def _on_add_photos(self) -> None:
        if self._add_photos is not None:
            self._add_photos(self.selected_name() or "", self)
