"""About FaceApp: the version, the models in use and their licences, and where the
gallery, the settings and the caches live."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from faceapp import __version__
from faceapp.gui.i18n import translate
from faceapp.gui.icons import app_icon
from faceapp.paths import cache_dir
from faceapp.vision.detection import YUNET_FILE


def _networks(card) -> str:
    """``sface``, or for the fused model its networks: ``sface + dlib_resnet``."""
    return " + ".join(m.architecture for m in card.members) if card.members else card.architecture


def about_html(card, gallery_path, settings_location: str, device: str) -> str:
    """The dialog's text, as simple HTML (everything escaped)."""
    licence = translate("AboutDialog", "licence")
    rows = [
        (translate("AboutDialog", "Face detector"), f"YuNet ({YUNET_FILE}, in TensorFlow), {licence} MIT"),
        (translate("AboutDialog", "Liveness check"), f"MiniFASNetV2 + MiniFASNetV1SE (Minivision), {licence} Apache-2.0"),
        (translate("AboutDialog", "Face embedding"),
         f"{card.model_id} ({_networks(card)}, {card.embedding_dim}-d), {licence} {card.license}"),
        (translate("AboutDialog", "Runs on"), device),
        (translate("AboutDialog", "Gallery"), str(gallery_path)),
        (translate("AboutDialog", "Settings"), settings_location),
        (translate("AboutDialog", "Model cache"), str(cache_dir())),
    ]
    intro = translate("AboutDialog", "Real-time face recognition on your own computer. Everything runs offline: "
                                     "no face, name or photo leaves this machine.")
    closing = translate("AboutDialog", "FaceApp is free software under the Apache-2.0 licence; the licences of the "
                                       "models are in the models folder.")
    table = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return (
        f"<h2>FaceApp {html.escape(__version__)}</h2>"
        f"<p>{html.escape(intro)}</p><table>{table}</table><p>{html.escape(closing)}</p>"
    )


class AboutDialog(QDialog):
    """Shows :func:`about_html` beside the app's icon."""

    def __init__(self, card, gallery_path, settings_location: str, device: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("About FaceApp"))
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(96, 96))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel(about_html(card, gallery_path, settings_location, device))
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(icon)
        row.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.resize(560, 320)
