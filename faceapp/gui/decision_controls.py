"""The decision rule in the toolbar: a preset (a share of strangers' faces allowed to be
named, whatever the gallery's size) or one fixed threshold.

The combo box offers the presets and "Fixed threshold"; the spin box shows the threshold
in use for the gallery as it is (a preset's calibrated value, updated when the gallery
changes) and editing it switches to a fixed threshold. Nothing here reads the gallery:
the value shown comes from the matcher the recognition thread last built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QToolBar

from faceapp.gui.i18n import translate
from faceapp.recognition.decision import DecisionRule

if TYPE_CHECKING:
    from faceapp.recognition.pipeline import Recognizer

PRESET_NAMES = {
    "strict": QT_TRANSLATE_NOOP("DecisionControls", "Strict"),
    "balanced": QT_TRANSLATE_NOOP("DecisionControls", "Balanced"),
    "lenient": QT_TRANSLATE_NOOP("DecisionControls", "Lenient"),
}
FIXED = "fixed"


def preset_label(recognizer: Recognizer, preset: str, short: bool = False) -> str:
    """``Balanced (target: 1% of strangers named)`` (``short``: ``Balanced (1%)``), or
    with the fixed value when the model has no open-set calibration."""
    name = translate("DecisionControls", PRESET_NAMES[preset]) if preset in PRESET_NAMES else preset
    calibration = recognizer.calibration
    if calibration is not None and preset in calibration.targets:
        share = f"{calibration.targets[preset]:.1%}".replace(".0%", "%")
        if short:
            return f"{name} ({share})"
        return translate("DecisionControls", "{name} (target: {share} of strangers named)").format(name=name, share=share)
    return f"{name} ({recognizer.card.threshold_presets[preset]:.3f})"


def decision_options(recognizer: Recognizer, current: DecisionRule) -> list[tuple[str, str]]:
    """(rule as text, label) for every preset, and for the current fixed threshold if any."""
    options = [(preset, preset_label(recognizer, preset)) for preset in recognizer.card.threshold_presets]
    if current.fixed is not None:
        options.append((current.to_text(), translate("DecisionControls", "Fixed threshold {value}").format(value=f"{current.fixed:.3f}")))
    return options


class DecisionControls:
    """The toolbar's decision combo box and threshold spin box. ``apply(rule)`` is called
    when the user chooses (the main window's ``set_decision``)."""

    def __init__(self, bar: QToolBar, recognizer: Recognizer, apply) -> None:
        self.recognizer = recognizer
        self._apply = apply
        bar.addWidget(QLabel(" " + translate("DecisionControls", "Names") + " "))
        self.combo = QComboBox()
        for preset in recognizer.card.threshold_presets:
            self.combo.addItem(preset_label(recognizer, preset, short=True), preset)
            self.combo.setItemData(self.combo.count() - 1, preset_label(recognizer, preset), Qt.ItemDataRole.ToolTipRole)
        self.combo.addItem(translate("DecisionControls", "Fixed threshold"), FIXED)
        self.combo.setToolTip(translate("DecisionControls", "When a face is named: a preset allows a share of strangers' faces "
                                        "to be named (in brackets), whatever the number of people enrolled; or one fixed "
                                        "similarity threshold"))
        self.combo.activated.connect(self._chosen)
        bar.addWidget(self.combo)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(-1.0, 1.0)
        self.spin.setSingleStep(0.01)
        self.spin.setDecimals(3)
        self.spin.setKeyboardTracking(False)  # a typed value applies on Enter, not at every keystroke
        self.spin.valueChanged.connect(self._typed)
        bar.addWidget(self.spin)
        self._shown: tuple | None = None  # (rule, value) on screen, so that every frame is not a repaint
        self.show_rule(recognizer.decision)

    def _chosen(self, index: int) -> None:
        data = self.combo.itemData(index)
        if data != FIXED:
            self._apply(DecisionRule(str(data)))
            return
        # Fix the threshold in use now (never a placeholder the box showed before a frame).
        rule, shown = self.recognizer.decision, self.recognizer.last_threshold
        value = rule.fixed if rule.fixed is not None else shown if shown is not None else self.recognizer.verification_threshold
        self._apply(DecisionRule(fixed=round(float(value), 3)))

    def _typed(self, value: float) -> None:
        self._apply(DecisionRule(fixed=float(value)))

    def show_rule(self, rule: DecisionRule) -> None:
        """Show ``rule`` without calling back."""
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(self.combo.findData(FIXED if rule.fixed is not None else rule.preset))
        self.combo.blockSignals(False)
        self._set_spin(rule.fixed if rule.fixed is not None else self.recognizer.last_threshold)

    def show_threshold(self, value: float | None) -> None:
        """Show the threshold a preset chose for the gallery as it is now (a fixed rule
        shows its own value, whatever a frame in flight says)."""
        if self.recognizer.decision.fixed is None:
            self._set_spin(value)

    def _set_spin(self, value: float | None) -> None:
        rule = self.recognizer.decision
        known = value is not None
        shown = (rule, None if value is None else round(value, 4))
        if shown == self._shown:
            return  # called for every frame: nothing to change
        self._shown = shown
        self.spin.setEnabled(known)  # a preset's value is known from the next frame on
        if known and abs(self.spin.value() - value) >= 5e-4:
            self.spin.blockSignals(True)
            self.spin.setValue(value)
            self.spin.blockSignals(False)
        if rule.preset is not None:
            tip = (translate("DecisionControls", "The threshold {preset} chooses for this gallery; type a value to fix it")
                   if known else
                   translate("DecisionControls", "The threshold {preset} chooses for this gallery is shown from the next frame on"))
            self.spin.setToolTip(tip.format(preset=rule.preset))
        else:
            self.spin.setToolTip(translate("DecisionControls", "Cosine similarity needed to name a face"))
