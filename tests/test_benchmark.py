"""`faceapp bench` runs every pipeline on the same frames and reports comparable figures
(no timing is asserted: only that the figures exist and are consistent)."""

from __future__ import annotations

import json

import pytest

from faceapp.cli.main import main


def test_bench_json_has_one_object_per_pipeline(fixtures_dir, capsys):
    assert main(["-q", "bench", "--frames", "12", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = [p["name"] for p in report["pipelines"]]
    assert names[0].startswith("faceapp tracking on (") and names[1].startswith("faceapp tracking on + sightings")
    assert names[2].startswith("faceapp tracking off")
    assert names[3] == "tracking on, OpenCV detector, full size"  # the live loop before issue 16, same run
    assert report["sightings_vs_tracking_on"] > 0
    assert "opencv-yunet-sface" in names  # the reference ONNX is fetched for the tests
    for pipeline in report["pipelines"]:
        assert pipeline["frames"] == 12 and pipeline["fps"] > 0
        assert set(pipeline["ms"]) == {"detect", "align", "embed", "match", "total"}
        assert all(s["p95_ms"] >= s["median_ms"] >= 0 for s in pipeline["ms"].values())
    # Every pipeline saw the same faces in the same frames.
    assert len({p["faces"] for p in report["pipelines"] if "dlib" not in p["name"]}) == 1
    # The detector alone: OpenCV's DNN, ours, and ours at the working resolution, at 3 sizes, same faces.
    detectors = report["detectors"]
    assert {tuple(r["size"]) for r in detectors} == {(640, 360), (640, 480), (1280, 720)}
    assert len(detectors) == 9 and all(r["ms_per_frame"] > 0 for r in detectors)
    assert [r["vs_opencv"] is None for r in detectors if r["detector"] == "OpenCV DNN"] == [False] * 3
    for size in ((640, 360), (640, 480), (1280, 720)):
        faces = {r["detector"]: r["faces"] for r in detectors if tuple(r["size"]) == size}
        assert len(set(faces.values())) == 1, faces  # full size: exactly the same faces (detect-side 960 keeps these)
    liveness = report["liveness"]
    assert liveness["ms_per_face_1"] > 0 and liveness["ms_per_face_batch"] > 0 and liveness["faces_per_frame"] >= 1
    runtimes = {row["runtime"] for row in report["embedding"]}
    assert {"faceapp (LiteRT/XNNPACK)", "plain TensorFlow tf.function", "OpenCV DNN (same ONNX)"} <= runtimes
    # The open-set decision alone: a fixed threshold (the reference) against per-person
    # thresholds and "not them" faces, over the same synthetic gallery.
    matching = report["matching"]
    assert (matching["people"], matching["templates"]) == (1000, 5) and matching["calibrate_ms"] > 0
    rows = matching["rows"]
    assert [r["vs_fixed"] is None for r in rows] == [True, False, False]
    assert all(r["us_per_frame"] > 0 for r in rows)


def test_bench_search_compares_exact_the_apps_index_and_hnsw(lfw_dir, capsys):
    assert main(["-q", "bench", "search", "--sizes", "500,3000", "--real", "300", "--queries", "50", "--lfw", str(lfw_dir),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    methods = ("exact (numpy)", "usearch HNSW", "faiss HNSW", "app (faiss PQ fast-scan)", "pgvector HNSW")
    assert {(r["size"], r["method"]) for r in rows} == {(n, m) for n in (500, 3000) for m in methods}
    for r in rows:
        assert r["memory_mb"] > 0 and r["p95_ms_1"] >= r["p50_ms_1"] > 0 and r["build_s"] >= 0
        assert r["recall_at_1"] == 1.0 if r["method"].startswith("exact") else r["recall_at_1"] >= 0.9
    # The synthetic templates look like the real ones to the similarity's median.
    real, synthetic = report["similarity_percentiles"]["real"][0], report["similarity_percentiles"]["synthetic"][0]
    assert abs(real - synthetic) < 0.05


def test_bench_search_methods_are_chosen_by_name():
    from faceapp.evaluation.search_speed import chosen_methods

    assert [m.name for m in chosen_methods(("faiss",))] == ["exact (numpy)", "faiss HNSW"]
    assert {m.name for m in chosen_methods(None)} >= {"exact (numpy)", "app (faiss PQ fast-scan)", "pgvector HNSW"}
    with pytest.raises(SystemExit):
        main(["bench", "search", "--methods", "exact,nope"])
