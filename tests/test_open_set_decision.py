"""The open-set decision on real faces: LFW galleries of several hundred people, a
look-alike corrected once, and a person's own threshold (issue 13).

The LFW-based tests need the shared LFW set (skipped without it on a user's clone,
an error in CI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import file_digest, ok, refused, run_here

KNOWN_PEOPLE = 400  # drawn from LFW's people with 2+ images: 1 enrolled each, the rest probe
STRANGERS = 800  # drawn from LFW's people with one image: never enrolled

# George W. Bush and his brother Jeb: SFace scores Jeb's photos 0.40-0.49 against George.
GEORGE = ("George_W_Bush_0007.jpg", "George_W_Bush_0016.jpg", "George_W_Bush_0065.jpg")
GEORGE_PROBES = ("George_W_Bush_0150.jpg", "George_W_Bush_0203.jpg", "George_W_Bush_0238.jpg")
JEB_MARKED = "Jeb_Bush_0001.jpg"
JEB_PROBES = ("Jeb_Bush_0002.jpg", "Jeb_Bush_0005.jpg", "Jeb_Bush_0006.jpg", "Jeb_Bush_0007.jpg")


@pytest.fixture(scope="module")
def lfw_people(lfw_dir, recognizer):
    """(embeddings, name -> usable rows) of 400 LFW people with 2+ images and 800 with one."""
    from faceapp.evaluation.ident import discover_people
    from faceapp.evaluation.images import embed_images
    from faceapp.vision.faces import FacePolicy

    people = discover_people(lfw_dir)
    rng = np.random.default_rng(13)
    known = rng.choice(sorted(n for n, images in people.items() if len(images) >= 2), KNOWN_PEOPLE, replace=False)
    strangers = rng.choice(sorted(n for n, images in people.items() if len(images) == 1), STRANGERS, replace=False)
    names = sorted([*known, *strangers])
    paths = [path for name in names for path in people[name]]
    result = embed_images(recognizer, paths, FacePolicy(no_face="skip"), flip=False)
    rows, start = {}, 0
    for name in names:
        count = len(people[name])
        rows[name] = [r for r in range(start, start + count) if result.usable[r]]
        start += count
    return result.plain, rows


def _fixed_label(recognizer) -> str:
    """The report's name of the fixed threshold the app used before (the card's default preset's value)."""
    from faceapp.recognition.decision import DecisionRule

    card = recognizer.card
    return DecisionRule(fixed=card.threshold_presets[card.default_preset]).label


def test_several_hundred_people_default_preset_meets_the_targets(lfw_people, make_recognizer):
    from faceapp.evaluation.app_decision import gallery_size_table

    embeddings, rows = lfw_people
    recognizer = make_recognizer()
    eligible = sum(1 for r in rows.values() if len(r) > 1)
    assert eligible >= 0.95 * KNOWN_PEOPLE
    (row,) = gallery_size_table(recognizer, embeddings, rows, (eligible,), enroll=1)
    assert row["people"] == eligible and row["stranger_probes"] >= 0.95 * STRANGERS
    app, fixed = row["rules"]["balanced"], row["rules"][_fixed_label(recognizer)]
    strict, lenient = row["rules"]["strict"], row["rules"]["lenient"]
    # The issue's targets at the default preset: at most 5% of strangers' photos named,
    # at least 90% of known people's photos named rightly.
    assert recognizer.decision.label == "balanced"
    assert app["false_alarm_rate"] <= 0.05, app
    assert app["dir"] >= 0.90, app
    # The fixed threshold of before names several times as many strangers at this size.
    assert fixed["false_alarm_rate"] >= 3 * max(app["false_alarm_rate"], 1 / STRANGERS), (fixed, app)
    # Presets are ordered targets: stricter names fewer strangers and fewer known people.
    assert strict["false_alarm_rate"] <= app["false_alarm_rate"] <= lenient["false_alarm_rate"] <= 0.10
    assert strict["dir"] <= app["dir"] <= lenient["dir"]
    assert strict["gallery_threshold"] > app["gallery_threshold"] > lenient["gallery_threshold"]
    # Rank-1 is the decision-free ranking: recomputed here by hand, the same.
    assert row["rank1"] >= app["dir"]
    gallery_people = sorted(n for n, r in rows.items() if len(r) > 1)
    templates = embeddings[[rows[n][0] for n in gallery_people]]
    probes = [(r, n) for n in gallery_people for r in rows[n][1:]]
    best = np.argmax(embeddings[[r for r, _ in probes]] @ templates.T, axis=1)
    assert row["rank1"] == pytest.approx(np.mean([gallery_people[b] == n for b, (_, n) in zip(best, probes)]))


def test_the_decision_grows_stricter_with_the_gallery(lfw_people, make_recognizer):
    from faceapp.evaluation.app_decision import gallery_size_table

    embeddings, rows = lfw_people
    recognizer = make_recognizer()
    small, large = gallery_size_table(recognizer, embeddings, rows, (10, 300), enroll=1, draws=2)
    assert small["rules"]["balanced"]["gallery_threshold"] < large["rules"]["balanced"]["gallery_threshold"]
    # The fixed threshold's false alarms grow with the gallery; the preset's stay near its target.
    fixed = _fixed_label(recognizer)
    assert large["rules"][fixed]["false_alarm_rate"] > 2 * small["rules"][fixed]["false_alarm_rate"]
    for row in (small, large):
        assert row["rules"]["balanced"]["false_alarm_rate"] <= 0.03, row


def test_a_fit_on_part_of_lfw_matches_the_shipped_calibration(lfw_people, recognizer):
    """The package's fit (``faceapp model calibrate``, ``model import --lfw``) on these
    1,200 people's faces lands near the default model's card, fitted on all of LFW."""
    from faceapp.errors import ModelError
    from faceapp.evaluation.open_set_fit import TooFewFaces, fit_open_set, shortfall
    from faceapp.recognition.decision import DEFAULT_TARGETS, OpenSetCalibration

    embeddings, rows = lfw_people
    used = [row for person_rows in rows.values() for row in person_rows]
    names = np.array([name for name, person_rows in rows.items() for _ in person_rows])
    assert shortfall(names) is None and len(used) > 1500
    fit = fit_open_set(embeddings[used], names)
    card = recognizer.card
    ours, shipped = OpenSetCalibration.from_card(fit.open_set), OpenSetCalibration.from_card(card.open_set)
    for people in (10, 100, 1000):
        for alpha in DEFAULT_TARGETS.values():
            counts = np.full(people, 3)
            assert abs(ours.gallery_threshold(counts, alpha) - shipped.gallery_threshold(counts, alpha)) < 0.01, (people, alpha)
    assert abs(fit.open_set["floor"] - card.open_set["floor"]) < 0.01
    assert abs(fit.tracking["same_face"] - card.same_face) < 0.01
    assert abs(fit.visitors_join["join"] - card.visitors["join"]) < 0.02

    few = names[np.isin(names, sorted(set(names))[:40])]
    assert "impostor pairs" in shortfall(few)
    with pytest.raises(TooFewFaces, match="too few faces"):
        fit_open_set(embeddings[: len(few)], few)
    broken = embeddings[used].copy()
    broken[3] = np.nan  # a diverged model's output: refused in one line, not fitted
    with pytest.raises(ModelError, match="1 of .* embeddings are not finite"):
        fit_open_set(broken, names)


def _identify(capfd, gallery, photo) -> list[dict]:
    return json.loads(ok(run_here(capfd, "--gallery", gallery, "identify", photo, "--json")).stdout)["faces"]


def _name_of(capfd, gallery, photo) -> str | None:
    (face,) = _identify(capfd, gallery, photo)
    return face["name"]


def test_a_look_alike_corrected_once_is_not_named_again(tmp_path, capfd, lfw_dir, fixtures_dir):
    from conftest import fixture_photos

    images = lfw_dir / "images"
    gallery = tmp_path / "g.sqlite3"
    ok(run_here(capfd, "--gallery", gallery, "enroll", "obama", *fixture_photos(fixtures_dir, "obama")))
    ok(run_here(capfd, "--gallery", gallery, "enroll", "George W Bush", *[images / p for p in GEORGE]))
    # Before: his brother's photos are named George.
    assert [_name_of(capfd, gallery, images / p) for p in (JEB_MARKED, *JEB_PROBES)] == ["George W Bush"] * 5
    # One of them is marked "not George" ...
    text = ok(run_here(capfd, "--gallery", gallery, "gallery", "not", "George W Bush", images / JEB_MARKED)).stdout
    assert "stored 1 face(s) as not 'George W Bush' (now 1)" in text
    # ... and none of Jeb's photos is named George again (nor anyone else) ...
    for photo in (JEB_MARKED, *JEB_PROBES):
        (face,) = _identify(capfd, gallery, images / photo)
        assert face["name"] is None and face["best_name"] == "George W Bush", (photo, face)
    # ... while George himself, and Obama, still are.
    assert [_name_of(capfd, gallery, images / p) for p in GEORGE_PROBES] == ["George W Bush"] * 3
    assert _name_of(capfd, gallery, fixture_photos(fixtures_dir, "obama")[0]) == "obama"
    listing = json.loads(ok(run_here(capfd, "--gallery", gallery, "gallery", "list", "--json")).stdout)
    assert {p["name"]: p["not_them"] for p in listing} == {"George W Bush": 1, "obama": 0}

    # Marking George's own photo as "not George" is refused: it would stop naming him.
    before = file_digest(gallery)
    error = refused(run_here(capfd, "--gallery", gallery, "gallery", "not", "George W Bush", images / GEORGE_PROBES[0]))
    assert "this face looks like 'George W Bush' themselves (similarity 0." in error and "--force" in error
    assert file_digest(gallery) == before
    refused(run_here(capfd, "--gallery", gallery, "gallery", "not", "Nobody", images / JEB_MARKED))
    assert file_digest(gallery) == before


def test_own_threshold_override_and_calibrate(tmp_path, capfd, enrolled_gallery_path, fixtures_dir):
    gallery = enrolled_gallery_path
    obama = fixtures_dir / "groups" / "obama_partial_face.jpg"  # not one of the enrolled photos
    (face,) = _identify(capfd, gallery, obama)
    assert face["name"] == "obama" and face["similarity"] < 0.999
    report = json.loads(ok(run_here(capfd, "--gallery", gallery, "gallery", "calibrate", "--json")).stdout)
    auto = {p["name"]: p for p in report["persons"]}["obama"]
    assert auto["own_threshold"] is None and auto["threshold"] == auto["automatic"]
    assert report["decision"] == "balanced" and report["target"] == 0.01
    assert report["presets"]["strict"]["gallery_threshold"] > report["gallery_threshold"] > 0.3

    # A threshold above this photo's similarity: Obama is no longer named; auto: again.
    high = round(face["similarity"] + 0.001, 4)
    ok(run_here(capfd, "--gallery", gallery, "gallery", "threshold", "obama", str(high)))
    assert _name_of(capfd, gallery, obama) is None
    report = json.loads(ok(run_here(capfd, "--gallery", gallery, "gallery", "calibrate", "--json")).stdout)
    mine = {p["name"]: p for p in report["persons"]}["obama"]
    assert mine["own_threshold"] == pytest.approx(high) and mine["threshold"] == pytest.approx(high)
    assert mine["automatic"] == pytest.approx(auto["automatic"])
    text = ok(run_here(capfd, "--gallery", gallery, "gallery", "list")).stdout
    assert f"own threshold {high:.3f}" in text
    ok(run_here(capfd, "--gallery", gallery, "gallery", "threshold", "obama", "auto"))
    assert _name_of(capfd, gallery, obama) == "obama"

    # A fixed rule gives everyone one threshold (the person's own still wins).
    text = ok(run_here(capfd, "--gallery", gallery, "--threshold", "0.45", "gallery", "calibrate")).stdout
    assert "decision: fixed 0.450 for everyone" in text
    before = file_digest(gallery)
    for bad in ("1.5", "nan", "high"):
        assert "a threshold is a cosine similarity" in refused(run_here(capfd, "--gallery", gallery, "gallery", "threshold", "obama", bad))
    assert "no person named" in refused(run_here(capfd, "--gallery", gallery, "gallery", "threshold", "nobody", "0.5"))
    assert file_digest(gallery) == before
