"""The source picker: webcam index, video file, stream URL or image folder."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceapp.errors import SourceError
from faceapp.gui.asker import Asker
from faceapp.media.imageio import IMAGE_SUFFIXES
from faceapp.media.sources import SourceSpec

KINDS = ("webcam", "file", "url", "folder")
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.m4v *.webm *.mpg *.mpeg *.wmv);;All files (*)"


class SourcePickerDialog(QDialog):
    """Asks for a source; :attr:`spec` and :attr:`loop` hold the answer once accepted."""

    def __init__(self, asker: Asker, current: SourceSpec | None = None, loop: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Choose a source"))
        self.setMinimumWidth(480)
        self._asker = asker
        self.spec: SourceSpec | None = None
        self.loop = loop

        self.buttons_by_kind: dict[str, QRadioButton] = {}
        group = QButtonGroup(self)
        grid = QGridLayout()
        labels = {"webcam": self.tr("Webcam"), "file": self.tr("Video file"), "url": self.tr("Stream URL"), "folder": self.tr("Image folder")}
        for row, kind in enumerate(KINDS):
            button = QRadioButton(labels[kind])
            group.addButton(button)
            self.buttons_by_kind[kind] = button
            grid.addWidget(button, row, 0)

        self.webcam_index = QSpinBox()
        self.webcam_index.setRange(0, 63)
        self.webcam_index.setPrefix(self.tr("index "))
        grid.addWidget(self.webcam_index, 0, 1)

        self.file_path = QLineEdit()
        self.file_path.setPlaceholderText("/path/to/video.mp4")
        grid.addLayout(self._with_browse(self.file_path, self._browse_file), 1, 1)

        self.url = QLineEdit()
        self.url.setPlaceholderText(self.tr("rtsp://camera.local/stream or http://…"))
        grid.addWidget(self.url, 2, 1)

        self.folder_path = QLineEdit()
        self.folder_path.setPlaceholderText("/path/to/photos")
        grid.addLayout(self._with_browse(self.folder_path, self._browse_folder), 3, 1)

        self.loop_box = QCheckBox(self.tr("Loop video files and folders (else stop at the end)"))
        self.loop_box.setChecked(loop)

        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setWordWrap(True)

        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.loop_box)
        layout.addWidget(self.error)
        layout.addWidget(box)

        self._edits = {"webcam": self.webcam_index, "file": self.file_path, "url": self.url, "folder": self.folder_path}
        for kind, edit in self._edits.items():
            self.buttons_by_kind[kind].toggled.connect(lambda on, e=edit: e.setEnabled(on))
            edit.setEnabled(False)
        self._show(current)

    def _with_browse(self, edit: QLineEdit, handler) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(edit)
        button = QPushButton(self.tr("Browse…"))
        button.clicked.connect(handler)
        row.addWidget(button)
        return row

    def _show(self, spec: SourceSpec | None) -> None:
        kind = spec.kind if spec is not None else "webcam"
        kind = "file" if kind == "device" else kind  # a camera's device file is typed like a file
        self.buttons_by_kind[kind].setChecked(True)
        if spec is None:
            return
        if kind == "webcam":
            self.webcam_index.setValue(int(spec.value))
        else:
            {"file": self.file_path, "url": self.url, "folder": self.folder_path}[kind].setText(spec.value)

    def _browse_file(self) -> None:
        path = self._asker.open_file(self, self.tr("Open a video file"), VIDEO_FILTER)
        if path:
            self.file_path.setText(path)
            self.buttons_by_kind["file"].setChecked(True)

    def _browse_folder(self) -> None:
        path = self._asker.folder(self, self.tr("Choose a folder of images"), self.folder_path.text())
        if path:
            self.folder_path.setText(path)
            self.buttons_by_kind["folder"].setChecked(True)

    def selected_kind(self) -> str:
        return next(kind for kind, button in self.buttons_by_kind.items() if button.isChecked())

    def chosen(self) -> SourceSpec:
        """The source the form describes; SourceError (one line) if it is not usable."""
        kind = self.selected_kind()
        if kind == "webcam":
            return SourceSpec("webcam", str(self.webcam_index.value()))
        text = {"file": self.file_path, "url": self.url, "folder": self.folder_path}[kind].text().strip()
        if not text:
            raise SourceError({"file": self.tr("choose a video file"), "url": self.tr("type a stream URL"),
                               "folder": self.tr("choose an image folder")}[kind])
        if kind == "url" and "://" not in text:
            raise SourceError(self.tr("{text}: a stream URL looks like rtsp://host/path or http://host/path").format(text=text))
        spec = SourceSpec.parse(text)
        if spec.kind != kind and not (kind == "file" and spec.kind == "device"):
            raise SourceError((self.tr("{text}: not a folder") if kind == "folder" else self.tr("{text}: not a file")).format(text=text))
        return spec

    def accept(self) -> None:
        try:
            self.spec = self.chosen()
        except SourceError as error:
            self.error.setText(str(error))
            return
        self.loop = self.loop_box.isChecked()
        super().accept()


IMAGE_FILTER = "Images (" + " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES) + ");;All files (*)"
