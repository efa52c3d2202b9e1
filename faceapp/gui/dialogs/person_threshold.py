"""The gallery dialog's "own threshold" field for the selected person.

"Automatic" (the default) lets the decision rule choose the person's threshold (see
:mod:`faceapp.recognition.decision`); otherwise the person is named only at a cosine
similarity of at least the value typed (``faceapp gallery threshold NAME VALUE|auto``).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from faceapp.storage.gallery import Person

DEFAULT_OWN = 0.5  # offered when "automatic" is first unticked and the model's own value is not given (SFace's scale)


class ThresholdField(QWidget):
    """``changed(value)``: the user set the person's own threshold (a float) or chose
    the automatic one (None). ``offered``: the value shown when "automatic" is unticked
    (the model's verification threshold: each model has its own scale)."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None, offered: float | None = None) -> None:
        super().__init__(parent)
        self.offered = DEFAULT_OWN if offered is None else float(offered)
        self.automatic = QCheckBox(self.tr("Automatic"))
        self.automatic.setToolTip(self.tr("Let the decision rule choose this person's threshold for the gallery"))
        self.spin = QDoubleSpinBox()
        self.spin.setRange(-1.0, 1.0)
        self.spin.setSingleStep(0.01)
        self.spin.setDecimals(3)
        self.spin.setToolTip(self.tr("This person is named only at this cosine similarity or more"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(self.tr("Own threshold")))
        layout.addWidget(self.automatic)
        layout.addWidget(self.spin, 1)
        self.automatic.toggled.connect(self._toggled)
        self.spin.editingFinished.connect(self._typed)
        self.show_person(None)

    def show_person(self, person: Person | None) -> None:
        """Show ``person``'s own threshold (or disable the field)."""
        self.setEnabled(person is not None)
        own = None if person is None else person.threshold
        for widget in (self.automatic, self.spin):
            widget.blockSignals(True)
        self.automatic.setChecked(own is None)
        self.spin.setValue(self.offered if own is None else own)
        self.spin.setEnabled(own is not None)
        for widget in (self.automatic, self.spin):
            widget.blockSignals(False)

    def _toggled(self, automatic: bool) -> None:
        self.spin.setEnabled(not automatic)
        self.changed.emit(None if automatic else round(self.spin.value(), 3))

    def _typed(self) -> None:
        if not self.automatic.isChecked():
            self.changed.emit(round(self.spin.value(), 3))
