"""People memory (issue 14): sightings from the fixture video and a folder of photos,
unknown visitors remembered across runs, clustering on LFW, corrections, alerts and
retention, through the command line and the core."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time

import numpy as np
import pytest
from cli_helpers import file_digest, ok, refused, run_here
from conftest import fixture_photos


@pytest.fixture
def obama_gallery(tmp_path, capfd, fixtures_dir):
    """A gallery with only Obama enrolled (Biden is a stranger to it)."""
    gallery = tmp_path / "memory.sqlite3"
    ok(run_here(capfd, "--gallery", gallery, "enroll", "obama", *fixture_photos(fixtures_dir, "obama")[1:3]))
    return gallery


def _sightings(capfd, gallery, *extra) -> list[dict]:
    return json.loads(ok(run_here(capfd, "--gallery", gallery, "sightings", "--json", *extra)).stdout)["sightings"]


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sightings_from_the_fixture_video_and_the_same_visitor_next_run(tmp_path, capfd, obama_gallery, fixture_video):
    g = ("--gallery", obama_gallery)
    text = ok(run_here(capfd, *g, "recognize", "--source", fixture_video.path, "--events", tmp_path / "e1.jsonl")).stdout
    assert "sighting(s) remembered" in text
    rows = _sightings(capfd, obama_gallery)
    obama = [s for s in rows if s["person"] == "obama"]
    strangers = [s for s in rows if s["person"] is None]
    # Obama's three scenes (one track each: the video cuts between them) and Biden's.
    assert len(obama) == 3 and len(strangers) >= 2
    for s in rows:
        assert s["source"] == str(fixture_video.path) and s["file"] is None
        assert s["first_seen"] <= s["last_seen"] and s["frames"] >= 1 and s["thumbnail"]
        assert s["first_frame"] <= s["last_frame"] and s["last_frame"] - s["first_frame"] + 1 >= s["frames"]
    # Obama in the first scene: frames 4-19 of the video.
    first = min(obama, key=lambda s: s["first_frame"])
    assert (first["first_frame"], first["last_frame"]) == (4, 19) and first["best_similarity"] > 0.6
    # Biden became a remembered visitor ...
    unknowns = json.loads(ok(run_here(capfd, *g, "unknowns", "list", "--json")).stdout)["unknowns"]
    assert len(unknowns) == 1 and unknowns[0]["label"] == f"Unknown #{unknowns[0]['id']}"
    visitor = unknowns[0]["id"]
    assert all(s["source"] == str(fixture_video.path) and s["file"] is None for s in unknowns[0]["sightings"])
    # ... and in a second run he is that visitor from his first appearance on.
    ok(run_here(capfd, *g, "recognize", "--source", fixture_video.path, "--events", tmp_path / "e2.jsonl"))
    biden_frames = {f for f, people in enumerate(fixture_video.people_per_frame) if people == ("biden",)}
    seen = [e for e in _events(tmp_path / "e2.jsonl") if e["frame"] in biden_frames and e["name"] is None]
    assert seen and {e["visitor"] for e in seen} == {visitor}
    assert len(json.loads(ok(run_here(capfd, *g, "unknowns", "list", "--json")).stdout)["unknowns"]) == 1
    # Filters.
    assert {s["person"] for s in _sightings(capfd, obama_gallery, "--person", "obama")} == {"obama"}
    assert {s["person"] for s in _sightings(capfd, obama_gallery, "--unknown")} == {None}
    assert _sightings(capfd, obama_gallery, "--until", "2000-01-01") == []
    assert len(_sightings(capfd, obama_gallery, "--since", "1h")) == len(rows) * 2
    csv = ok(run_here(capfd, *g, "sightings", "--csv")).stdout.splitlines()
    assert csv[0].startswith("id,label,person,visitor") and len(csv) == 1 + len(rows) * 2


def test_a_folder_of_photos_gives_one_sighting_per_face_with_its_path(tmp_path, capfd, obama_gallery, fixtures_dir):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = [*fixture_photos(fixtures_dir, "biden"), fixtures_dir / "obama" / "obama_4.jpg"]
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    ok(run_here(capfd, "--gallery", obama_gallery, "recognize", "--source", folder))
    rows = _sightings(capfd, obama_gallery)
    assert sorted(s["file"] for s in rows) == sorted(str(folder / p.name) for p in photos)
    assert all(s["frames"] == 1 and s["first_frame"] == s["last_frame"] for s in rows)
    assert {s["file"]: s["person"] for s in rows}[str(folder / "obama_4.jpg")] == "obama"
    # Two photos of one stranger are not enough to found a visitor (three close faces are).
    assert json.loads(ok(run_here(capfd, "--gallery", obama_gallery, "unknowns", "list", "--json")).stdout) == {"unknowns": []}
    shutil.copy(fixtures_dir / "biden" / "biden_2.jpg", folder / "biden_again.jpg")
    for photo in folder.glob("obama*"):
        photo.unlink()
    ok(run_here(capfd, "--gallery", obama_gallery, "recognize", "--source", folder))
    (visitor,) = json.loads(ok(run_here(capfd, "--gallery", obama_gallery, "unknowns", "list", "--json")).stdout)["unknowns"]
    files = {s["file"] for s in visitor["sightings"]}
    assert str(folder / "biden_again.jpg") in files and all(s["frame"] is None for s in visitor["sightings"])


def test_clustering_on_lfw(lfw_dir, recognizer, tmp_path):
    from faceapp.evaluation.clustering import bcubed, run_unknowns

    assert bcubed([1, 1, 2, 2], [5, 5, 6, 6]) == (1.0, 1.0, 1.0)
    p, r, _ = bcubed([1, 1, 2, 2], [5, 5, 5, 5])
    assert (p, r) == (0.5, 1.0)
    # 60 people with 4+ photos of the shared LFW set, as a folder per person.
    from faceapp.evaluation.ident import discover_people

    people = {n: ps for n, ps in discover_people(lfw_dir).items() if len(ps) >= 4}
    for name in sorted(people)[::max(1, len(people) // 60)][:60]:
        (tmp_path / name).mkdir()
        for photo in people[name][:6]:
            (tmp_path / name / photo.name).symlink_to(photo)
    report = run_unknowns(recognizer, tmp_path)
    live, offline = report["live"], report["dbscan"]
    assert live["people"] == 60
    assert live["precision"] >= 0.98 and live["f"] >= 0.95, live
    assert offline["precision"] >= 0.97 and offline["f"] >= 0.95, offline
    assert abs(live["clusters_of_2_or_more"] - 60) <= 6


def test_corrections_name_merge_dismiss(tmp_path, capfd, obama_gallery, fixture_video, fixtures_dir):
    g = ("--gallery", obama_gallery)
    ok(run_here(capfd, *g, "recognize", "--source", fixture_video.path))
    (visitor,) = json.loads(ok(run_here(capfd, *g, "unknowns", "list", "--json")).stdout)["unknowns"]
    # "Not obama" on one of Obama's sightings: a negative for him, the sighting unknown again.
    sighting = next(s for s in _sightings(capfd, obama_gallery) if s["person"] == "obama")
    ok(run_here(capfd, *g, "sightings", "not", sighting["id"]))
    assert {s["id"]: s["person"] for s in _sightings(capfd, obama_gallery)}[sighting["id"]] is None
    listing = json.loads(ok(run_here(capfd, *g, "gallery", "list", "--json")).stdout)
    assert {p["name"]: p["not_them"] for p in listing}["obama"] == 1
    # "This is obama" gives it back (and his negative stays as it was).
    ok(run_here(capfd, *g, "sightings", "name", sighting["id"], "obama"))
    assert {s["id"]: s["person"] for s in _sightings(capfd, obama_gallery)}[sighting["id"]] == "obama"
    # Naming the visitor enrolls Biden from his crops: he is named from then on.
    text = ok(run_here(capfd, *g, "unknowns", "name", visitor["id"], "biden")).stdout
    assert f"Unknown #{visitor['id']} is 'biden' now" in text
    assert json.loads(ok(run_here(capfd, *g, "unknowns", "list", "--json")).stdout) == {"unknowns": []}
    persons = {s["id"]: s["person"] for s in _sightings(capfd, obama_gallery)}
    assert all(persons[s["id"]] == "biden" for s in visitor["sightings"])
    faces = json.loads(ok(run_here(capfd, *g, "identify", fixtures_dir / "biden" / "biden_1.jpg", "--json")).stdout)["faces"]
    assert [f["name"] for f in faces] == ["biden"]
    # Errors leave the gallery as it was.
    before = file_digest(obama_gallery)
    assert "no unknown visitor #999" in refused(run_here(capfd, *g, "unknowns", "dismiss", "999"))
    assert "no sighting 99999" in refused(run_here(capfd, *g, "sightings", "not", "99999"))
    assert "cannot merge Unknown #3 into itself" in refused(run_here(capfd, *g, "unknowns", "merge", "3", "3"))
    assert file_digest(obama_gallery) == before
    # Another run: Biden is named; the remaining strangers (none here) would be visitors.
    ok(run_here(capfd, *g, "recognize", "--source", fixture_video.path, "--events", tmp_path / "e.jsonl"))
    names = {e["name"] for e in _events(tmp_path / "e.jsonl") if e["name"]}
    assert names == {"obama", "biden"}


def test_merge_and_dismiss_visitors_and_gallery_remove(tmp_path, obama_gallery, recognizer):
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.memory import NewSighting

    def sighting(person=None, visitor=None, when=None):
        when = when or time.time()
        return NewSighting(person, visitor, "test", when, when + 1, 3, 0.3, 0.8, np.eye(1, 128, dtype=np.float32),
                           recognizer.embedder.model_id, thumbnail=b"\xff\xd8 not really a jpeg")

    with Gallery(obama_gallery) as gallery:
        made = gallery.record([sighting(visitor=-1), sighting(visitor=-2), sighting(visitor=-2), sighting("obama")])
        a, b = made.visitors[-1], made.visitors[-2]
        assert gallery.merge_visitors(a, b).sightings == 3
        assert [v.id for v in gallery.visitors()] == [b]
        assert gallery.dismiss_visitor(b) == 3
        assert gallery.visitors() == [] and len(gallery.sightings()) == 1
        assert gallery.last_seen().keys() == {"obama"}
        gallery.remove("obama")  # his sightings go with him
        assert gallery.sightings() == []


def test_retention_purges_old_sightings(obama_gallery, recognizer, capfd):
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.memory import NewSighting

    def sighting(days_ago: float):
        when = time.time() - days_ago * 86400
        return NewSighting(None, None, "test", when, when, 1, 0.2, 0.5, np.eye(1, 128, dtype=np.float32), recognizer.embedder.model_id)

    with Gallery(obama_gallery) as gallery:
        assert gallery.retention_days == 30
        gallery.record([sighting(40), sighting(10)], purge=False)
        assert len(gallery.sightings()) == 2
        gallery.record([sighting(0)])  # every batch purges what is older than the retention
        assert sorted(round((time.time() - s.last_seen) / 86400) for s in gallery.sightings()) == [0, 10]
    g = ("--gallery", obama_gallery)
    assert "purged 1 sighting(s)" in ok(run_here(capfd, *g, "sightings", "purge", "--before", "5d")).stdout
    assert "kept for ever" in ok(run_here(capfd, *g, "sightings", "retention", "0")).stdout
    assert "kept for 7 days" in ok(run_here(capfd, *g, "sightings", "retention", "7")).stdout
    assert "kept for 7 days" in ok(run_here(capfd, *g, "sightings", "retention")).stdout
    with pytest.raises(SystemExit):
        run_here(capfd, *g, "sightings", "retention", "-1")


def test_an_alert_command_gets_the_event_on_its_stdin(tmp_path, capfd, obama_gallery, fixture_video):
    out = tmp_path / "alerts.jsonl"
    script = tmp_path / "append.py"
    script.write_text(f"import sys\nopen({str(out)!r}, 'a').write(sys.stdin.read())\n")
    text = ok(run_here(capfd, "--gallery", obama_gallery, "recognize", "--source", fixture_video.path,
                       "--on-event", f"{sys.executable} {script}", "--alert", "obama", "--alert-cooldown", "3600")).stdout
    assert "1 alert(s)" in text  # Obama appears in three scenes; the cool-down keeps it to one
    (event,) = _events(out)
    assert event["event"] == "appeared" and event["person"] == "obama" and event["label"] == "obama"
    assert event["source"] == str(fixture_video.path) and event["frame"] >= 4
    out.unlink()
    ok(run_here(capfd, "--gallery", obama_gallery, "recognize", "--source", fixture_video.path, "--no-sightings",
                "--on-event", f"{sys.executable} {script}", "--alert", "unknown", "--alert-cooldown", "0"))
    events = _events(out)
    assert events and all(e["person"] is None for e in events)
    assert "--alert needs --on-event" in refused(run_here(capfd, "--gallery", obama_gallery, "recognize", "--source",
                                                           fixture_video.path, "--alert", "obama"))


def test_embeddings_only_and_encryption_cover_sightings(tmp_path, capfd, obama_gallery, fixture_video, monkeypatch):
    from faceapp.storage.gallery import Gallery

    g = ("--gallery", obama_gallery)
    ok(run_here(capfd, *g, "recognize", "--source", fixture_video.path))
    raw = sqlite3.connect(obama_gallery).execute("SELECT thumbnail FROM sightings").fetchall()
    assert raw and all(t[0][:2] == b"\xff\xd8" for t in raw)  # JPEG crops
    monkeypatch.setenv("SECRET", "correct horse battery")
    ok(run_here(capfd, *g, "gallery", "encrypt", "--new-passphrase-env", "SECRET"))
    raw = sqlite3.connect(obama_gallery).execute("SELECT thumbnail, embeddings FROM sightings").fetchall()
    assert all(t[:2] != b"\xff\xd8" for t, _ in raw)  # sealed
    with Gallery(obama_gallery, passphrase="correct horse battery") as gallery:
        assert all(s.thumbnail[:2] == b"\xff\xd8" and s.embeddings.shape[1] == 256 for s in gallery.sightings())
        gallery.set_embeddings_only(True)
        assert all(s.thumbnail is None for s in gallery.sightings())


def test_export_and_import_carry_the_memory(tmp_path, capfd, obama_gallery, fixture_video):
    g = ("--gallery", obama_gallery)
    ok(run_here(capfd, *g, "recognize", "--source", fixture_video.path))
    before = _sightings(capfd, obama_gallery)
    visitors = json.loads(ok(run_here(capfd, *g, "unknowns", "list", "--json")).stdout)["unknowns"]
    ok(run_here(capfd, *g, "gallery", "export", tmp_path / "backup.zip"))
    other = tmp_path / "other.sqlite3"
    ok(run_here(capfd, "--gallery", other, "gallery", "import", tmp_path / "backup.zip"))
    after = _sightings(capfd, other)
    keys = ("person", "source", "first_seen", "last_seen", "first_frame", "last_frame", "frames", "thumbnail")
    def rows(items):
        return sorted(tuple(str(s[k]) for k in keys) for s in items)

    assert rows(after) == rows(before)
    imported = json.loads(ok(run_here(capfd, "--gallery", other, "unknowns", "list", "--json")).stdout)["unknowns"]
    assert [len(v["sightings"]) for v in imported] == [len(v["sightings"]) for v in visitors]
    # The same backup again (merging): nothing doubles.
    ok(run_here(capfd, "--gallery", other, "gallery", "import", tmp_path / "backup.zip", "--on-conflict", "merge"))
    assert len(_sightings(capfd, other)) == len(before)
    assert len(json.loads(ok(run_here(capfd, "--gallery", other, "unknowns", "list", "--json")).stdout)["unknowns"]) == len(visitors)


def test_alert_rules_and_cooldown():
    from faceapp.recognition.alerts import AlertRule, Alerts
    from faceapp.recognition.memory import Appearance

    now = [0.0]
    seen = []
    alerts = Alerts([AlertRule.parse("Ann", 10), AlertRule.parse("unknown", 0, source="door")], [seen.append],
                    clock=lambda: now[0])

    def event(person=None, visitor=None, source="door"):
        return Appearance(source, 0.0, 1, 1, person, visitor, 0.5)

    assert alerts(event("Ann")) and not alerts(event("Ann"))  # the cool-down
    now[0] = 11.0
    assert alerts(event("Ann"))
    assert not alerts(event("Bob"))  # nobody asked for Bob
    assert alerts(event(visitor=3)) and alerts(event(visitor=3))  # no cool-down for unknowns at the door
    assert not alerts(event(visitor=3, source="garden"))  # another source
    assert [e["label"] for e in seen] == ["Ann", "Ann", "Unknown #3", "Unknown #3"]
    assert AlertRule.parse("UNKNOWN").who == "unknown" and AlertRule.parse("Known").who == "known"


# --------------------------------------------------------------------------- the memory stage, with made-up faces
def _unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


class _Faces:
    """Frame results of made-up faces: one stranger ``who`` (a direction in embedding space)."""

    def __init__(self, memory, rng):
        from faceapp.types import AlignedFace, Detection

        self.memory, self.rng = memory, rng
        self.detection = Detection((10.0, 10.0, 100.0, 100.0), np.zeros((5, 2), np.float32), 0.99)
        self.aligned = AlignedFace(np.full((112, 112, 3), 128, np.uint8), self.detection)
        self.frame = 0

    def track(self, who, track_id, frames=5):
        from faceapp.types import FaceResult, FrameResult, Match, StageTimes

        shown = set()
        for _ in range(frames):
            face = FaceResult(self.detection, _unit(who + 0.05 * self.rng.normal(size=128)), Match(None, 0.2, "ann", 0.1, 0.4),
                              track_id=track_id, aligned=self.aligned)
            shown.add(self.memory.observe(FrameResult((face,), StageTimes(), (640, 480)), self.frame).faces[0].visitor)
            self.frame += 1
        for _ in range(self.memory.close_after + 2):  # the face leaves: its sighting closes
            self.memory.observe(FrameResult((), StageTimes(), (640, 480)), self.frame)
            self.frame += 1
        self.memory.writer.flush()
        return shown - {None}


@pytest.fixture
def two_visitors(tmp_path):
    from faceapp.storage.gallery import Gallery, NewTemplate
    from faceapp.storage.memory import NewSighting

    rng = np.random.default_rng(2)
    a, b = _unit(rng.normal(size=128)), _unit(rng.normal(size=128))
    gallery = Gallery(tmp_path / "m.sqlite3")
    gallery.add_person("ann", [NewTemplate(_unit(rng.normal(size=128)), "m")])
    when = time.time() - 100
    for who in (a, b):
        faces = np.stack([_unit(who + 0.05 * rng.normal(size=128)) for _ in range(3)])
        gallery.record([NewSighting(None, -1, "cam", when, when + 5, 10, 0.2, 0.8, faces, "m")])
    yield gallery, a, b, rng
    gallery.close()


def test_a_merge_made_elsewhere_reaches_a_running_memory(two_visitors):
    from faceapp.recognition.memory import Memory

    gallery, a, _b, rng = two_visitors
    memory = Memory(gallery, "m", 128, "cam", close_after=2)
    memory.sync_every = 1
    faces = _Faces(memory, rng)
    assert faces.track(a, 1) == {1}
    gallery.merge_visitors(1, 2)  # in another window, or `faceapp unknowns merge 1 2`
    assert faces.track(a, 2) == {2}
    memory.close()
    assert {s.label for s in gallery.sightings()} == {"Unknown #2"}


def test_the_retention_keeps_a_visitor_whose_face_is_in_view(two_visitors):
    from faceapp.recognition.memory import Memory
    from faceapp.storage.memory import NewSighting

    gallery, a, _b, rng = two_visitors
    old = time.time() - 40 * 86400
    with gallery._write(counter="memory_revision") as conn:  # Unknown #1 was last seen 40 days ago
        conn.execute("UPDATE sightings SET first_seen = ?, last_seen = ? WHERE visitor_id = 1", (old, old + 5))
        conn.execute("UPDATE visitors SET created_at = ?, active_at = ? WHERE id = 1", (old, old))
    memory = Memory(gallery, "m", 128, "cam", close_after=2)
    faces = _Faces(memory, rng)
    assert faces.track(a, 1) == {1}  # recognised, then stored: the purge of that batch spares them
    gallery.record([NewSighting(None, None, "cam", time.time(), time.time(), 1, 0.1, 0.5, _unit(rng.normal(size=(1, 128))), "m")])
    memory.close()
    assert [v.id for v in gallery.visitors() if v.id == 1] == [1]
    assert {s.visitor for s in gallery.sightings()} >= {1}


def test_a_failed_write_is_tried_again_without_splitting_a_visitor(tmp_path, monkeypatch):
    from faceapp.errors import GalleryError
    from faceapp.recognition.memory import Memory
    from faceapp.storage.gallery import Gallery

    rng = np.random.default_rng(5)
    stranger = _unit(rng.normal(size=128))
    with Gallery(tmp_path / "f.sqlite3") as gallery:
        real = gallery.create_visitors
        calls = []

        def flaky(count):
            calls.append(count)
            if len(calls) == 1:
                raise GalleryError("gallery is busy (used by another process); try again later")
            return real(count)

        monkeypatch.setattr(gallery, "create_visitors", flaky)
        memory = Memory(gallery, "m", 128, "cam", close_after=2)
        memory.writer.interval_s = 0.05
        faces = _Faces(memory, rng)
        for track_id in range(1, 5):
            faces.track(stranger, track_id)
        memory.close()
        assert len(gallery.visitors()) == 1 and len(gallery.sightings()) == 4
        assert {s.visitor for s in gallery.sightings()} == {gallery.visitors()[0].id}


def test_each_new_stranger_alerts_once_per_track():
    from faceapp.recognition.alerts import AlertRule, Alerts
    from faceapp.recognition.memory import Appearance

    seen = []
    alerts = Alerts([AlertRule.parse("unknown", 3600)], [seen.append], clock=lambda: 0.0)
    for track in (1, 2, 3, 1):
        alerts(Appearance("door", 0.0, 1, track, None, None, 0.2))
    assert [e["track_id"] for e in seen] == [1, 2, 3]
