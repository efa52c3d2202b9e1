"""Tracking and name voting (issue: stable identities in real time)."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.recognition.tracking import LiveRecognizer, NameVote, Observation, Tracker
from faceapp.types import Detection
from faceapp.vision.boxes import iou_matrix


def det(x: float, y: float, size: float = 60.0, score: float = 0.9) -> Detection:
    landmarks = np.array([[x + 0.3 * size, y + 0.4 * size], [x + 0.7 * size, y + 0.4 * size], [x + 0.5 * size, y + 0.6 * size],
                          [x + 0.35 * size, y + 0.8 * size], [x + 0.65 * size, y + 0.8 * size]], np.float32)
    return Detection((x, y, size, size), landmarks, score)


def test_iou_matrix_known_values():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [100, 100, 5, 5]], float)
    iou = iou_matrix(boxes, boxes)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[0, 2] == 0.0


def test_ids_kept_through_small_motions():
    tracker = Tracker()
    first, _ = tracker.update(0, [det(100, 100), det(400, 120)])
    for frame in range(1, 30):
        ids, _ = tracker.update(frame, [det(100 + 3 * frame, 100 + frame), det(400 - 2 * frame, 120)])
        assert ids == first


def test_new_id_after_a_gap_longer_than_max_missed():
    tracker = Tracker(max_missed=5)
    (first,), _ = tracker.update(0, [det(100, 100)])
    (same,), _ = tracker.update(4, [det(102, 100)])  # missed 3 frames: same track
    assert same == first
    _, ended = tracker.update(20, [])
    assert ended == [first]
    (new,), _ = tracker.update(21, [det(102, 100)])
    assert new != first


def test_no_id_swap_when_two_faces_cross():
    tracker = Tracker()
    left, right = None, None
    for frame in range(40):
        a = det(100 + 10 * frame, 200)  # moves right
        b = det(490 - 10 * frame, 205)  # moves left; they overlap around frame 19
        ids, _ = tracker.update(frame, [a, b])
        if frame == 0:
            left, right = ids
        assert ids == [left, right], f"swap at frame {frame}"


def test_fast_motion_at_low_frame_rate_is_followed():
    tracker = Tracker()
    (first,), _ = tracker.update(0, [det(100, 100, size=50)])
    for frame in range(1, 8):  # 50 px per frame with a 50 px face: no overlap at all
        (same,), _ = tracker.update(frame, [det(100 + 50 * frame, 100, size=50)])
        assert same == first


def test_vote_does_not_flicker_on_alternating_scores():
    vote = NameVote(window=8, switch_after=2)
    shown = []
    for step in range(20):
        similarity = 0.7 if step % 2 == 0 else 0.35  # alternately above / just below 0.363
        name = "alice" if similarity >= 0.363 else None
        shown.append(vote.add(Observation(name, similarity, 0.9)))
    assert set(shown) == {"alice"}


def test_vote_switches_unknown_to_known_only_on_steady_evidence():
    vote = NameVote(window=8, switch_after=2)
    for _ in range(4):
        assert vote.add(Observation(None, 0.1, 0.9)) is None
    assert vote.add(Observation("bob", 0.8, 0.9)) is None  # one recognition is not enough
    names = [vote.add(Observation("bob", 0.8, 0.9)) for _ in range(5)]
    assert names[-1] == "bob"
    assert names.index("bob") <= 3


def test_vote_rejects_bad_arguments():
    with pytest.raises(ValueError):
        NameVote(window=0)
    with pytest.raises(ValueError):
        Tracker(iou_threshold=1.5)


@pytest.fixture(scope="module")
def enrolled(recognizer, fixtures_dir, tmp_path_factory):
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery

    gallery = Gallery(tmp_path_factory.mktemp("tracking") / "g.sqlite3")
    for person in ("obama", "biden"):
        photos = sorted((fixtures_dir / person).glob("*.jpg"))[:2]
        samples = samples_from_files(recognizer, photos)
        gallery.add_person(person, [s.template(recognizer.embedder.model_id) for s in samples])
    yield gallery
    gallery.close()


def test_video_each_track_keeps_one_name(recognizer, enrolled, fixture_video):
    from faceapp.media.sources import open_source

    recognizer.gallery = enrolled
    try:
        live = LiveRecognizer(recognizer)
        names_per_track: dict[int, set] = {}
        wrong = 0
        embedded_frames = 0
        with open_source(str(fixture_video.path)) as source:
            for frame, truth in zip(source, fixture_video.people_per_frame):
                result = live.process(frame.image)
                embedded_frames += result.times.embed > 0.5
                seen = sorted(f.match.name for f in result.faces if f.match.name)
                wrong += seen != sorted(truth)
                for face in result.faces:
                    names_per_track.setdefault(face.track_id, set()).add(face.match.name)
                    assert face.track_id is not None
                names = [f.match.name for f in result.faces if f.match.name]
                assert len(names) == len(set(names)), "two faces given the same name"
    finally:
        recognizer.gallery = None
    assert all(len(names) == 1 for names in names_per_track.values()), names_per_track
    assert wrong <= 2, f"{wrong} frames with the wrong set of names"
    # Tracks are not re-embedded every frame.
    assert embedded_frames < 0.6 * fixture_video.frame_count
