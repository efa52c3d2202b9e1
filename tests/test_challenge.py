"""The head-turn challenge as a state machine: frames' times and yaws in, a verdict out."""

from __future__ import annotations

import random

import pytest

from faceapp.recognition.challenge import ChallengeConfig, ChallengeState, HeadTurnChallenge


def _run(challenge: HeadTurnChallenge, yaws, step_s: float = 0.1) -> ChallengeState:
    for n, yaw in enumerate(yaws):
        challenge.step(n * step_s, yaw)
    return challenge.end()


def _turn(to: float, frames: int = 8):
    return [to * (k + 1) / frames for k in range(frames)]


@pytest.mark.parametrize("order", [("left", "right"), ("right", "left")])
def test_turning_as_asked_passes(order):
    challenge = HeadTurnChallenge(order=order)
    assert challenge.prompt == "look straight at the camera"
    first, second = (30.0, -30.0) if order[0] == "left" else (-30.0, 30.0)
    prompts = []
    for n, yaw in enumerate([2.0, 1.0] + _turn(first) + _turn(second)):
        challenge.step(n * 0.1, yaw)
        prompts.append(challenge.prompt)
    assert challenge.state is ChallengeState.PASSED and challenge.done == list(order)
    assert f"turn your head to your {order[0]}" in prompts and f"turn your head to your {order[1]}" in prompts


def test_the_wrong_order_and_a_timeout_fail_with_the_reason():
    wrong = HeadTurnChallenge(order=("left", "right"))
    assert _run(wrong, [0.0] + _turn(-35.0)) is ChallengeState.FAILED  # right first
    assert wrong.reason == "turned right when asked to turn left"
    slow = HeadTurnChallenge(order=("left", "right"), config=ChallengeConfig(time_limit_s=2.0))
    assert _run(slow, [0.0] + _turn(12.0) + [0.0] * 30) is ChallengeState.FAILED  # a shy turn, then nothing
    assert "did not turn left within 2 s" in slow.reason and "at most 12 of the 20 degrees" in slow.reason


def test_a_photo_that_never_turns_fails_and_half_turns_do_not_count():
    assert _run(HeadTurnChallenge(order=("left", "right")), [0.5] * 200) is ChallengeState.FAILED
    half = HeadTurnChallenge(order=("right", "left"))
    assert _run(half, [0.0] + _turn(-15.0) + _turn(15.0)) is ChallengeState.FAILED
    assert "before the video ended" in half.reason and "at most 15 of the 20" in half.reason



def test_a_recording_that_turns_both_ways_passes_one_order_only():
    """A replay turning left, right, left (from frontal each time) must not pass both orders."""
    replay = [0.0] * 5 + [25.0] * 3 + [0.0] * 3 + [-25.0] * 3 + [0.0] * 3 + [25.0] * 3
    assert _run(HeadTurnChallenge(order=("left", "right")), replay) is ChallengeState.PASSED
    wrong = HeadTurnChallenge(order=("right", "left"))
    assert _run(wrong, replay) is ChallengeState.FAILED and wrong.reason == "turned left when asked to turn right"


def test_each_turn_starts_from_a_frontal_view():
    swing = HeadTurnChallenge(order=("left", "right"))  # left, then straight to the right without facing the camera
    assert _run(swing, [0.0] + _turn(30.0) + [-30.0] * 3) is ChallengeState.FAILED
    assert swing.reason == "turned left, never looked straight at the camera again, so the turn right could not start"
    back = HeadTurnChallenge(order=("left", "right"))  # coming back from the left is not a wrong turn
    assert _run(back, [0.0] + _turn(30.0) + [15.0, 5.0, 0.0] + _turn(-30.0)) is ChallengeState.PASSED


def test_waiting_for_a_frontal_face_has_a_time_limit_too():
    empty = HeadTurnChallenge(order=("left", "right"), config=ChallengeConfig(time_limit_s=1.0))
    for n in range(30):
        empty.step(n * 0.1, None)
    assert empty.state is ChallengeState.FAILED and "within 1 s" in empty.reason


def test_it_starts_only_from_a_frontal_face_and_ignores_frames_without_one():
    challenge = HeadTurnChallenge(order=("left", "right"))
    for n, yaw in enumerate([40.0, None, 35.0, None]):  # turned already, or no single face: not started
        challenge.step(n, yaw)
    assert challenge.state is ChallengeState.WAITING and challenge.started_at is None
    assert _run(challenge, []) is ChallengeState.FAILED and "looked straight" in challenge.reason


def test_the_order_is_random_and_settings_are_checked():
    orders = {HeadTurnChallenge(rng=random.Random(seed)).order for seed in range(20)}
    assert orders == {("left", "right"), ("right", "left")}
    with pytest.raises(ValueError):
        HeadTurnChallenge(order=("left", "left"))
    with pytest.raises(ValueError):
        ChallengeConfig(frontal_degrees=30, turn_degrees=20).validate()
    with pytest.raises(ValueError):
        ChallengeConfig(time_limit_s=0).validate()
