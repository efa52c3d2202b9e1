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
    challenge = HeadTurnChallenge(order=("left", "right"), config=ChallengeConfig(time_limit_s=2.0))
    state = _run(challenge, [0.0] + _turn(-35.0) + [0.0] * 30)  # right first, never left
    assert state is ChallengeState.FAILED
    assert "did not turn left within 2 s" in challenge.reason and "at most 0 of the 20 degrees" in challenge.reason


def test_a_photo_that_never_turns_fails_and_half_turns_do_not_count():
    assert _run(HeadTurnChallenge(order=("left", "right")), [0.5] * 200) is ChallengeState.FAILED
    half = HeadTurnChallenge(order=("right", "left"))
    assert _run(half, [0.0] + _turn(-15.0) + _turn(15.0)) is ChallengeState.FAILED
    assert "before the video ended" in half.reason and "at most 15 of the 20" in half.reason
    late = HeadTurnChallenge(order=("right", "left"))  # left first (ignored), then right: left is still owed
    assert _run(late, [0.0] + _turn(40.0) + _turn(-30.0)) is ChallengeState.FAILED
    assert "turned right, did not turn left" in late.reason and "at most 0 of the 20" in late.reason


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
