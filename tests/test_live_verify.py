"""``faceapp verify --live``: the passive check, the head-turn challenge and the identity
together, on frames made from real LFW photos (a head turned one way; its mirror image
turned the other) and on the MiniFASNet authors' spoof samples."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceapp.cli.main import main
from faceapp.media.sources import Frame
from faceapp.recognition.challenge import HeadTurnChallenge
from faceapp.recognition.live_verify import verify_live
from faceapp.vision.pose import yaw_degrees

FRONTAL = ("George_W_Bush_0065.jpg", "George_W_Bush_0007.jpg", "George_W_Bush_0247.jpg")
TURNED_RIGHT = ("George_W_Bush_0238.jpg", "George_W_Bush_0145.jpg")  # yaw about -40 and -50 degrees
REFERENCE = "George_W_Bush_0016.jpg"
SOMEONE_ELSE = "Cherie_Blair_0001.jpg"


@pytest.fixture(scope="module")
def photos(lfw_dir):
    folder = lfw_dir / "images"
    return {name: cv2.imread(str(folder / name)) for name in (*FRONTAL, *TURNED_RIGHT, REFERENCE, SOMEONE_ELSE)}


@pytest.fixture(scope="module")
def checker():
    from faceapp.vision.liveness import LivenessChecker

    return LivenessChecker(device="cpu")


def _turning_head(photos, repeat: int = 3) -> list[np.ndarray]:
    """Frontal views, the head turned to the person's left (mirrored), frontal, right, frontal."""
    frontal = [photos[n] for n in FRONTAL]
    right = [photos[n] for n in TURNED_RIGHT]
    left = [cv2.flip(image, 1) for image in right]
    return [image for image in frontal + left + frontal + right + frontal for _ in range(repeat)]


def _frames(images, fps: float = 10.0):
    return [Frame(n, n / fps, image) for n, image in enumerate(images)]


def _reference(recognizer, image):
    face = max(recognizer.detect(image), key=lambda d: d.area)
    return recognizer.embed(recognizer.align(image, [face]))[0]


def test_the_turned_views_have_the_yaw_the_challenge_needs(recognizer, photos):
    for name in TURNED_RIGHT:
        (face,) = recognizer.detect(photos[name])
        (mirrored,) = recognizer.detect(cv2.flip(photos[name], 1))
        assert yaw_degrees(face.landmarks) < -25 and yaw_degrees(mirrored.landmarks) > 25
    for name in FRONTAL:
        assert abs(yaw_degrees(recognizer.detect(photos[name])[0].landmarks)) < 10


def test_a_live_person_turning_as_asked_is_verified(recognizer, photos, checker):
    prompts: list[str] = []
    verdict = verify_live(recognizer, _frames(_turning_head(photos)), checker, HeadTurnChallenge(order=("left", "right")),
                          reference=_reference(recognizer, photos[REFERENCE]), on_prompt=prompts.append)
    assert verdict.verdict == "same person, live", verdict
    assert verdict.live and verdict.same and verdict.liveness >= checker.threshold
    assert prompts[:3] == ["look straight at the camera", "turn your head to your left", "turn your head to your right"]


def test_the_other_order_is_not_followed_by_a_recording(recognizer, photos, checker):
    verdict = verify_live(recognizer, _frames(_turning_head(photos)), checker, HeadTurnChallenge(order=("right", "left")),
                          reference=_reference(recognizer, photos[REFERENCE]))
    assert not verdict.live and verdict.same  # the right face, but it never turned left after turning right
    assert "head-turn challenge failed: turned left when asked to turn right" in verdict.reason


def test_someone_else_is_refused(recognizer, photos, checker):
    verdict = verify_live(recognizer, _frames(_turning_head(photos)), checker, HeadTurnChallenge(order=("left", "right")),
                          reference=_reference(recognizer, photos[SOMEONE_ELSE]))
    assert verdict.live and verdict.same is False and "not the reference photo" in verdict.reason


def test_a_face_swapped_between_frames_is_caught(recognizer, photos, checker, fixtures_dir):
    """One person looks straight at the camera (and matches the reference), another turns."""
    other = cv2.resize(cv2.imread(str(fixtures_dir / "obama" / "obama_1.jpg")), photos[FRONTAL[0]].shape[1::-1])
    right = [photos[n] for n in TURNED_RIGHT]
    frames = [other] * 6 + [cv2.flip(image, 1) for image in right] * 3 + [other] * 3 + right * 3 + [other] * 6
    verdict = verify_live(recognizer, _frames(frames), checker, HeadTurnChallenge(order=("left", "right")),
                          reference=_reference(recognizer, other))
    assert not verdict.live and not verdict.same and "the face changed during the check" in verdict.reason


def test_a_photo_held_up_to_the_camera_fails_both_checks(recognizer, checker, minifasnet_samples):
    spoof = cv2.imread(str(minifasnet_samples / "image_F2.jpg"))
    verdict = verify_live(recognizer, _frames([spoof] * 40), checker, HeadTurnChallenge(order=("left", "right")),
                          reference=_reference(recognizer, spoof))
    assert not verdict.live and verdict.challenge == "failed"
    assert "looks like a photo or a screen" in verdict.reason and "did not turn left" in verdict.reason


def test_the_command_line_answers_in_one_line(tmp_path, photos, lfw_dir, capsys):
    video = tmp_path / "turning.avi"
    images = _turning_head(photos)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, images[0].shape[1::-1])
    for image in images:
        writer.write(image)
    writer.release()
    reference = lfw_dir / "images" / REFERENCE
    assert main(["-q", "verify", "--live", "--source", str(video), "--challenge-order", "left-right", str(reference)]) == 0
    assert capsys.readouterr().out.strip() == "same person, live"
    assert main(["-q", "verify", "--live", "--source", str(video), "--challenge-order", "right-left", str(reference)]) == 3
    assert capsys.readouterr().out.startswith("not verified: head-turn challenge failed")
    assert main(["verify", "--live", str(reference)]) == 1
    assert "--live needs --source" in capsys.readouterr().err
    assert main(["verify", "--live", "--source", str(tmp_path), str(reference)]) == 1
    assert "cannot turn its head" in capsys.readouterr().err
    assert main(["verify", "--live", "--source", str(reference), str(reference)]) == 1  # a photo as the "camera"
    assert "a photo cannot turn its head" in capsys.readouterr().err
    assert main(["verify", "--live", "--source", str(video), "--person", "nobody"]) == 1
    assert "'nobody' is not enrolled in the gallery" in capsys.readouterr().err
    assert main(["verify", "--source", str(video), str(reference), str(reference)]) == 1
    assert "go with --live" in capsys.readouterr().err
