"""A desktop app that looks like one: the icon, toolbar icons and tooltips, the About
and settings dialogs, and the interface in Simplified Chinese."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

REPO = Path(__file__).resolve().parents[2]


def test_icons_and_tooltips(make_window):
    window = make_window()
    assert not window.windowIcon().isNull()
    for action in (window.source_action, window.pause_action, window.snapshot_action, window.enroll_action,
                   window.gallery_action, window.settings_action):
        assert not action.icon().isNull(), action.text()
        shortcut = action.shortcut().toString()
        assert shortcut and shortcut in action.toolTip(), (action.text(), action.toolTip())


def test_about_names_the_version_the_models_and_where_things_live(make_window, gallery):
    from faceapp import __version__

    window = make_window()
    dialog = window.open_about_dialog()
    text = dialog.text.text()
    for expected in (__version__, "sface-dlib-fused-v1", "sface + dlib_resnet", "Apache-2.0", "YuNet", "MIT", str(gallery.path),
                     window.settings.location):
        assert expected in text, expected
    dialog.reject()


def test_settings_are_applied_and_kept(qtbot, make_window, settings, live_recognizer, tmp_path, asker_factory):
    from faceapp.gui.dialogs.settings import CAPTURE_SIZES, SettingsDialog

    window = make_window(asker=asker_factory(confirm=[True]))
    dialog = window.open_settings_dialog()
    assert isinstance(dialog, SettingsDialog)
    dialog.min_face.setValue(64)
    dialog.tracking.setChecked(False)
    assert dialog.threshold.currentData() == "balanced"  # the default preset
    dialog.threshold.setCurrentIndex(dialog.threshold.findData("strict"))
    dialog.capture.setCurrentIndex(CAPTURE_SIZES.index((1280, 720)))
    dialog.blur.setCurrentIndex(dialog.blur.findData("unknown"))
    dialog.language.setCurrentIndex(dialog.language.findData("zh_CN"))
    new_gallery = tmp_path / "elsewhere.sqlite3"
    dialog.gallery.setText(str(new_gallery))
    dialog.accept()
    qtbot.waitUntil(lambda: window.recognizer.gallery is window.gallery and window.gallery.path == new_gallery, timeout=20_000)
    assert live_recognizer.detector.config.min_face_size == 64
    assert not window.controller.tracking
    assert window.recognizer.decision.label == "strict"
    assert window.decision_controls.combo.currentData() == "strict"
    kept = type(settings).at(settings.location)
    assert kept.decision == "strict"
    assert (kept.min_face_size, kept.tracking, kept.capture_size, kept.snapshot_blur, kept.language) == (64, False, (1280, 720), "unknown", "zh_CN")
    assert kept.gallery_path == new_gallery
    live_recognizer.detector.config = type(live_recognizer.detector.config)()  # the detector is shared by the session
    window.close()
    window.gallery.close()


def test_the_interface_speaks_chinese(qtbot, make_window):
    from faceapp.gui.i18n import install_translators

    app = QApplication.instance()
    try:
        assert install_translators(app, "zh_CN") == "zh_CN"
        window = make_window()
        assert window.snapshot_action.text() == "截图" and window.privacy.menu.title() == "隐私(&P)"
        dialog = window.open_settings_dialog()
        assert dialog.windowTitle() == "设置"
        dialog.reject()
    finally:
        assert install_translators(app, "en") == "en"
    english = make_window()
    assert english.snapshot_action.text() == "Snapshot"


def test_every_interface_string_is_translated_and_compiled():
    """tools/translations.py check: no unfinished string, the .qm matches its .ts, and
    lupdate finds nothing in the code that the .ts lacks."""
    import shutil
    import tempfile

    result = subprocess.run([sys.executable, "tools/translations.py", "check"], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    with tempfile.TemporaryDirectory() as scratch:
        ts = Path(scratch) / "faceapp_zh_CN.ts"
        shutil.copyfile(REPO / "assets/translations/faceapp_zh_CN.ts", ts)
        sources = sorted(str(p) for p in (REPO / "faceapp" / "gui").rglob("*.py"))
        sys.path.insert(0, str(REPO / "tools"))
        from translations import tool, unfinished

        subprocess.run([tool("lupdate"), "-no-obsolete", "-locations", "none", *sources, "-ts", str(ts)],
                       capture_output=True, check=True)
        assert unfinished(ts) == [], "new interface strings: run tools/translations.py update, translate, release"
