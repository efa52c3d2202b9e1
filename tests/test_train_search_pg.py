"""``faceapp train --search N --study-storage postgresql://...``: one optuna study in a
real PostgreSQL server (the ``postgres_url`` fixture: a new database per test, see
tests/postgres_server.py) shared by separate ``faceapp`` processes, as by machines.

Process A runs 2 trials; then B and C run 1 trial each at the same time. Both see A's
trials (trial numbers continue, no number twice, the totals add up), draw different
parameters, and report the best trial of the whole study first and export their own;
a run with other settings is refused in one line. The URL carries a password (accepted
and ignored by the private test server) that must appear in no output or file.

The trials are the tiny ones of tests/test_train_search.py: 2 epochs of 1 step on 6 LFW
people (``lfw_dir``: skipped locally without LFW, failing in CI).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from train_helpers import training_env

optuna = pytest.importorskip("optuna")
pytest.importorskip("psycopg")

SECRET = "Not-To-Be-Printed"


def _with_password(url: str) -> tuple[str, str]:
    """``url`` and its password: the private server (trust authentication) gets ours;
    a server from FACEAPP_TEST_POSTGRES keeps its own (may be empty)."""
    parts = urlsplit(url)
    if parts.password or os.environ.get("FACEAPP_TEST_POSTGRES"):
        return url, parts.password or ""
    netloc = f"{parts.username or 'postgres'}:{SECRET}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), SECRET


def _train(lfw_dir: Path, out: Path, cache: Path, storage: str, trials: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "faceapp", "train", str(lfw_dir), "--out", str(out), "--min-images", "4", "--max-images", "4",
         "--max-people", "6", "--val-fraction", "0.34", "--cache-dir", str(cache), "--epochs", "2", "--steps-per-epoch", "1",
         "--batch-size", "8", "--dropout", "0", "--no-augment", "--val-pairs", "24", "--patience", "5", "--device", "cpu",
         "-q", "--search", str(trials), "--study-storage", storage, "--study-name", "shared", *extra],
        env=training_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(*children: subprocess.Popen) -> list[tuple[int, str, str]]:
    results = []
    try:
        for child in children:
            stdout, stderr = child.communicate(timeout=400)
            results.append((child.returncode, stdout, stderr))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return results


def _ok(result: tuple[int, str, str], name: str) -> str:
    code, stdout, stderr = result
    assert code == 0, f"{name} exited {code}: {stderr[-3000:]}"
    return stdout


def _text_files(folder: Path):
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".txt"):
            yield path, path.read_text(encoding="utf-8", errors="replace")


def test_processes_share_one_study_in_postgresql(lfw_dir, postgres_url, tmp_path):
    from faceapp.training.search import redact, storage_url

    url, password = _with_password(postgres_url)
    assert storage_url(url).startswith("postgresql+psycopg://")  # psycopg 3, not SQLAlchemy's default psycopg2
    cache = tmp_path / "crops"

    # A: the first machine creates the study and runs 2 trials.
    first = json.loads(_ok(_finish(_train(lfw_dir, tmp_path / "a", cache, url, 2, "--json"))[0], "A"))
    assert sorted(row["trial"] for row in first["search"]) == [0, 1]
    assert first["study"]["exported_trial"] == first["search"][0]["trial"]  # its best trial, exported
    assert first["study"]["storage"] == redact(url) and first["study"]["study_name"] == "shared"

    # B and C: two more machines at once, on A's faces cache (read only), 1 trial each.
    b, c = _finish(_train(lfw_dir, tmp_path / "b", cache, url, 1), _train(lfw_dir, tmp_path / "c", cache, url, 1, "--json"))
    text, third = _ok(b, "B"), json.loads(_ok(c, "C"))
    b_rows = json.loads((tmp_path / "b" / "search" / "search.json").read_text())
    reported = re.search(r"best trial run here \((\d+)\) exported to (\S+) as model", text)
    assert reported and reported.group(2) == str(tmp_path / "b"), text
    b_trial, c_trial = int(reported.group(1)), third["study"]["exported_trial"]  # each exports its only trial
    assert {b_trial, c_trial} == {2, 3}  # the numbers continue, none given twice
    assert text.count("\n") >= 4 and text.startswith("trial  state")  # B's table: A's 2 trials and its own at least
    for rows, own in ((b_rows, b_trial), (third["search"], c_trial)):
        assert {0, 1, own} <= {row["trial"] for row in rows}  # A's trials seen
        assert [row["auc"] for row in rows] == sorted((row["auc"] for row in rows), reverse=True)  # the best first
    study = optuna.load_study(study_name="shared", storage=storage_url(url))
    assert [t.number for t in study.trials] == [0, 1, 2, 3]  # 2 + 1 + 1
    assert {t.state for t in study.trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert study.trials[2].params != study.trials[3].params  # machines started together do not draw alike
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert third["search"][0]["auc"] == pytest.approx(max(t.value for t in completed), abs=1e-5)
    assert len(optuna.get_all_study_names(storage_url(url))) == 1

    # Other settings (here 3 epochs) may not join the study: one line, no password.
    code, stdout, stderr = _finish(_train(lfw_dir, tmp_path / "d", cache, url, 1, "--epochs", "3"))[0]
    assert code == 1 and stderr.count("\n") == 1, stderr[-3000:]
    assert stderr.startswith("faceapp: error: study 'shared' in ") and "other settings (config.epochs)" in stderr

    if password:  # never printed, nor written into the reports, tables or model cards
        for output in (json.dumps(first), text, json.dumps(third), stdout, stderr, *(r[2] for r in (b, c))):
            assert password not in output
        for folder in ("a", "b", "c"):
            for path, content in _text_files(tmp_path / folder):
                assert password not in content, path
