"""Questions to the user, behind one small injectable object.

Windows never call QMessageBox, QInputDialog or QFileDialog directly: they ask an
:class:`Asker`. The app uses :class:`QtAsker` (modal Qt dialogs); tests pass a scripted
one that answers at once, so nothing blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QWidget


class Asker(Protocol):
    """Everything a window may ask. Each returns None (or False / []) when cancelled."""

    def confirm(self, parent: QWidget | None, title: str, text: str) -> bool: ...

    def choose(self, parent: QWidget | None, title: str, text: str, options: Sequence[str]) -> str | None:
        """One of ``options`` (shown as buttons, the last one also meaning "cancel")."""
        ...

    def pick(self, parent: QWidget | None, title: str, label: str, items: Sequence[str]) -> str | None:
        """One of ``items`` from a list."""
        ...

    def text(self, parent: QWidget | None, title: str, label: str, default: str = "") -> str | None: ...

    def password(self, parent: QWidget | None, title: str, label: str) -> str | None:
        """A secret typed without echo (a passphrase)."""
        ...

    def open_files(self, parent: QWidget | None, title: str, filters: str) -> list[str]: ...

    def open_file(self, parent: QWidget | None, title: str, filters: str) -> str | None: ...

    def save_file(self, parent: QWidget | None, title: str, default: str, filters: str) -> str | None: ...

    def folder(self, parent: QWidget | None, title: str, start: str = "") -> str | None: ...


class QtAsker:
    """The real :class:`Asker`: modal Qt dialogs."""

    def confirm(self, parent: QWidget | None, title: str, text: str) -> bool:
        answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def choose(self, parent: QWidget | None, title: str, text: str, options: Sequence[str]) -> str | None:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
        buttons = []
        for index, option in enumerate(options):
            last = index == len(options) - 1
            role = QMessageBox.ButtonRole.RejectRole if last else QMessageBox.ButtonRole.AcceptRole
            buttons.append(box.addButton(option, role))
        if buttons:
            box.setDefaultButton(buttons[0])
            box.setEscapeButton(buttons[-1])
        box.exec()
        clicked = box.clickedButton()
        for option, button in zip(options, buttons):
            if button is clicked:
                return option
        return None

    def pick(self, parent: QWidget | None, title: str, label: str, items: Sequence[str]) -> str | None:
        item, ok = QInputDialog.getItem(parent, title, label, list(items), 0, False)
        return item if ok and item else None

    def text(self, parent: QWidget | None, title: str, label: str, default: str = "") -> str | None:
        value, ok = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Normal, default)
        return value if ok else None

    def password(self, parent: QWidget | None, title: str, label: str) -> str | None:
        value, ok = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Password, "")
        return value if ok else None

    def open_files(self, parent: QWidget | None, title: str, filters: str) -> list[str]:
        paths, _ = QFileDialog.getOpenFileNames(parent, title, "", filters)
        return list(paths)

    def open_file(self, parent: QWidget | None, title: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(parent, title, "", filters)
        return path or None

    def save_file(self, parent: QWidget | None, title: str, default: str, filters: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(parent, title, default, filters)
        return path or None

    def folder(self, parent: QWidget | None, title: str, start: str = "") -> str | None:
        path = QFileDialog.getExistingDirectory(parent, title, start)
        return path or None
