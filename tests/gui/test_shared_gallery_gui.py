"""The live window on a gallery shared on a real PostgreSQL server: another desktop's
enrollment shows up live, and a server that goes away is reported in the status bar
while recognition goes on, then cleared when it is back."""

from __future__ import annotations

import tempfile

import pytest

WAIT_MS = 20_000


@pytest.fixture
def server_url():
    """A private server (this test stops and starts it)."""
    pgserver = pytest.importorskip("pgserver")
    folder = tempfile.mkdtemp(prefix="faceapp-pg-gui-")
    holder = {"server": pgserver.get_server(folder, cleanup_mode="stop"), "folder": folder}
    holder["url"] = holder["server"].get_uri()
    yield holder
    holder["server"].cleanup()


@pytest.fixture
def gallery(server_url):
    """The window's gallery: on the server (replaces the file gallery of conftest)."""
    from faceapp.storage.gallery import Gallery

    with Gallery(server_url["url"]) as value:
        yield value


def test_another_desktop_enrolls_and_the_server_goes_away_and_back(qtbot, make_window, gallery, server_url,
                                                                   enrolled_templates, biden_frames, camera_factory):
    import pgserver

    from faceapp.storage.gallery import Gallery

    window = make_window(opener=camera_factory(biden_frames).open)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Unknown"], timeout=WAIT_MS)
    with Gallery(server_url["url"]) as other_desktop:
        other_desktop.add_person("biden", enrolled_templates["biden"])
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    assert not window.gallery_label.isVisible()

    server_url["server"].cleanup()  # the server stops
    qtbot.waitUntil(lambda: "Gallery server" in window.gallery_label.text(), timeout=WAIT_MS)
    assert window.gallery_label.isVisible() and "connection lost" in window.gallery_label.text()
    frames = []
    window.controller.packetReady.connect(lambda _: frames.append(window.view.overlay_names()))
    qtbot.waitUntil(lambda: len(frames) >= 5, timeout=WAIT_MS)  # recognition goes on
    assert frames[-1] == ["biden"]

    server_url["server"] = pgserver.get_server(server_url["folder"], cleanup_mode="stop")
    qtbot.waitUntil(lambda: window.gallery_label.text() == "", timeout=WAIT_MS)
    assert not window.gallery_label.isVisible()
