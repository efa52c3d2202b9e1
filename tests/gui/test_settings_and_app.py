"""Settings persistence, and the app started the way ``faceapp`` starts it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from faceapp.gui.main_window import MainWindow
from faceapp.gui.settings import SETTINGS_ENV, AppSettings
from faceapp.recognition.pipeline import PipelineConfig

CPU = PipelineConfig(device="cpu")


def test_settings_persist_between_runs(tmp_path):
    path = tmp_path / "settings.ini"
    first = AppSettings.at(path)
    assert first.decision is None and first.loop_video and first.sample_count == 5
    first.decision = "strict"
    first.source = "/videos/door.mp4"
    first.loop_video = False
    first.sample_count = 7
    again = AppSettings.at(path)
    assert (again.decision, again.source, again.loop_video, again.sample_count) == ("strict", "/videos/door.mp4", False, 7)


def test_a_threshold_remembered_by_an_older_faceapp_is_a_fixed_one(tmp_path):
    from PySide6.QtCore import QSettings

    path = tmp_path / "old.ini"
    old = QSettings(str(path), QSettings.Format.IniFormat)
    old.setValue("recognition/threshold", 0.42)
    old.sync()
    settings = AppSettings.at(path)
    assert settings.decision == "0.42"
    settings.decision = "balanced"  # a new choice replaces the old key
    assert AppSettings.at(path).decision == "balanced"
    assert QSettings(str(path), QSettings.Format.IniFormat).value("recognition/threshold") is None


def test_settings_file_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "env.ini"))
    AppSettings.open().decision = "0.5"
    assert (tmp_path / "env.ini").is_file()


def test_run_app_opens_the_window_on_the_source_and_closes_cleanly(qtbot, tmp_path, monkeypatch, fixture_video, gallery_with):
    from faceapp.gui.app import run_app

    gallery = gallery_with("obama", "biden")
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "app.ini"))
    AppSettings.open().decision = "0.3"  # remembered from a previous run
    seen: dict = {}

    def check_and_close():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if not windows:
            QTimer.singleShot(100, check_and_close)
            return
        window = windows[0]
        if window.controller.latest is None:
            QTimer.singleShot(100, check_and_close)
            return
        seen["threshold"] = window.recognizer.threshold
        seen["threads"] = window.controller.threads()
        seen["title"] = window.windowTitle()
        window.close()

    QTimer.singleShot(100, check_and_close)
    assert run_app(CPU, gallery.path, source=str(fixture_video.path)) == 0
    assert seen["threshold"] == pytest.approx(0.3)
    assert fixture_video.path.name in seen["title"]
    assert seen["threads"] and not any(t.isRunning() for t in seen["threads"])


def test_run_app_explains_a_broken_gallery_in_one_line(tmp_path, capsys):
    from faceapp.gui.app import run_app

    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"this is not a database at all" * 10)
    assert run_app(CPU, broken) == 1
    error = capsys.readouterr().err
    assert error.startswith("faceapp: error:") and error.count("\n") == 1
