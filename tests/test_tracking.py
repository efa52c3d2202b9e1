"""Tracking, name voting, and never carrying a name onto another face."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.recognition.live import Tracking
from faceapp.recognition.tracking import Tracker
from faceapp.recognition.voting import NameVote, Observation
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


class CountingEmbedder:
    """A spy around the real embedder: counts the faces it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.faces = 0
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed(self, faces, *chips):  # the fused default also takes dlib's chips
        self.calls += 1
        self.faces += len(faces)
        return self.inner.embed(faces, *chips)


@pytest.fixture
def spied(recognizer, enrolled):
    """A Recognizer over the enrolled gallery whose embedder counts its work."""
    from faceapp.recognition.pipeline import Recognizer

    spy = CountingEmbedder(recognizer.embedder)
    return Recognizer(recognizer.card, recognizer.detector, spy, recognizer.decision, enrolled), spy


def test_video_each_track_keeps_one_name(spied, fixture_video):
    from faceapp.media.sources import open_source

    live, spy = spied
    tracking = Tracking()
    names_per_track: dict[int, set] = {}
    wrong = faces = 0
    with open_source(str(fixture_video.path)) as source:
        for frame, truth in zip(source, fixture_video.people_per_frame):
            result = live.process(frame.image, tracking)
            faces += len(result.faces)
            seen = sorted(f.match.name for f in result.faces if f.match.name)
            wrong += seen != sorted(truth)
            for face in result.faces:
                names_per_track.setdefault(face.track_id, set()).add(face.match.name)
                assert face.track_id is not None
            names = [f.match.name for f in result.faces if f.match.name]
            assert len(names) == len(set(names)), "two faces given the same name"
    assert all(len(names) == 1 for names in names_per_track.values()), names_per_track
    assert wrong <= 2, f"{wrong} frames with the wrong set of names"
    # Tracks are not re-embedded every frame: far fewer embeddings than faces seen.
    assert spy.faces == tracking.stats.embedded
    assert 0 < spy.faces < 0.6 * faces, (spy.faces, faces)


# --------------------------------------------------------------------------- a name never jumps faces
TARGET_BOX = (240.0, 110.0, 170.0, 170.0)  # where both faces sit, (x, y, w, h) in a 640x480 frame


def _face_at_target(recognizer, fixtures_dir, photo: str, whole_frame: bool):
    """A 640x480 frame with the face of ``photo`` scaled and moved onto TARGET_BOX: the
    whole photo warped into the frame (``whole_frame``), or only the face's surroundings
    pasted on a plain grey background (so that the rest of the frame does not change)."""
    import cv2

    from faceapp.media.imageio import read_image

    image = read_image(fixtures_dir / photo)
    face = max(recognizer.detect(image), key=lambda d: d.area)
    scale = TARGET_BOX[2] / face.box[2]
    shift = (TARGET_BOX[0] - face.box[0] * scale, TARGET_BOX[1] - face.box[1] * scale)
    matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float32)
    warped = cv2.warpAffine(image, matrix, (640, 480), borderValue=(96, 96, 96))
    if whole_frame:
        return warped
    frame = np.full((480, 640, 3), 96, np.uint8)
    x, y, w, h = (int(v) for v in TARGET_BOX)
    pad = 40
    frame[y - pad : y + h + pad, x - pad : x + w + pad] = warped[y - pad : y + h + pad, x - pad : x + w + pad]
    return frame


@pytest.mark.parametrize("whole_frame", [True, False], ids=["shot-cut", "face-swap-in-place"])
def test_a_name_is_never_carried_onto_another_face(spied, fixtures_dir, whole_frame):
    """A close-up of obama, then biden in the very same place: from the first frame of
    biden on, the face is named biden (or unknown), never obama."""
    live, _ = spied
    obama = _face_at_target(live, fixtures_dir, "obama/obama_1.jpg", whole_frame)
    biden = _face_at_target(live, fixtures_dir, "biden/biden_2.jpg", whole_frame)
    tracking = Tracking()
    before = [live.process(obama, tracking) for _ in range(12)]
    assert all(len(r.faces) == 1 and r.faces[0].match.name == "obama" for r in before)
    old_track = before[-1].faces[0].track_id
    after = [live.process(biden, tracking) for _ in range(6)]
    for number, result in enumerate(after):
        (face,) = result.faces
        assert face.match.name != "obama", f"frame {number} after the change still says obama"
        assert face.track_id != old_track
    assert after[0].faces[0].match.name == "biden"
    if whole_frame:
        assert tracking.stats.cuts == 1
    else:  # the rest of the frame is unchanged: the face's own appearance gave it away
        assert tracking.stats.cuts == 0 and tracking.stats.appearance_changes >= 1 and tracking.stats.splits == 1


# --------------------------------------------------------------------------- poor views
def test_views_too_poor_to_judge_name_nobody_and_do_not_outvote_good_ones():
    """A track seen only in poor views (detector confidence below the gate) stays unknown
    and is re-embedded soon; one good view names it; poor views that look like someone
    else do not take the name away."""
    from faceapp.recognition.matching import Matcher
    from faceapp.types import AlignedFace
    from faceapp.vision.quality import JUDGE_MIN_CONFIDENCE
    from tests.unit_vectors import unit

    rng = np.random.default_rng(0)
    alice, bob = unit(rng.normal(size=(2, 128)))
    matcher = Matcher(np.stack([alice, bob]), np.array([0, 1]), ("alice", "bob"), 0.4)
    image = np.full((480, 640, 3), 96, np.uint8)
    tracking = Tracking()

    def frame(index: int, score: float, embedding: np.ndarray):
        detections = [det(200, 150, size=120, score=score)]
        plan = tracking.plan(image, detections, matcher, index)
        faces = [AlignedFace(np.zeros((112, 112, 3), np.uint8), detections[row]) for row in plan.needs]
        rows = np.stack([embedding] * len(plan.needs)) if plan.needs else np.zeros((0, 128), np.float32)
        return plan, tracking.decide(plan, detections, faces, rows, matcher, 128)[0]

    poor = JUDGE_MIN_CONFIDENCE - 0.03
    shown = [frame(i, poor, alice) for i in range(7)]
    assert all(face.match.name is None and not face.judged for _, face in shown)  # "not judged yet", not a stranger
    assert [i for i, (plan, _) in enumerate(shown) if plan.needs] == [0, 3, 6]  # re-tried every 3 frames
    assert tracking.stats.unjudged == 3
    plan, face = frame(7, 0.95, alice)
    assert face.match.name is None or plan.needs  # (embedded only when due)
    for i in range(8, 12):
        _, face = frame(i, 0.95, alice)
    assert face.match.name == "alice"
    like_bob = unit((0.45 * alice + bob)[None])[0]  # still alice's track (0.41 to her), but matches bob
    for i in range(12, 40):  # poor, blurred views that happen to match bob
        _, face = frame(i, poor, like_bob)
        assert face.match.name == "alice" and face.track_id == shown[0][1].track_id
    assert tracking.stats.splits == 0
    for i in range(40, 80):  # ... where good views of the same win (at the next re-embeddings)
        _, face = frame(i, 0.95, like_bob)
    assert face.match.name == "bob" and face.judged
    # bob leaves the gallery: poor views of him do not keep his name on screen.
    matcher = Matcher(alice[None], np.array([0]), ("alice",), 0.4)
    embedded = tracking.stats.embedded
    for i in range(80, 110):
        plan, face = frame(i, poor, like_bob)
        assert face.match.name is None and not face.judged
    assert tracking.stats.embedded - embedded == 10  # the first frame, then every 3rd: not every frame
