"""Reliability stress runs: the SIGKILL loop and the input fuzzers.

    python tools/stress.py kill --count 200        # kill a gallery writer 200 times
    python tools/stress.py fuzz --count 2000       # 2000 cases per fuzz target
    python tools/stress.py all --count 200

``tests/test_reliability.py`` runs the same code with small counts (the CI version).

Kill loop: each iteration starts a worker process that opens the gallery and performs one
operation (enroll, import, merge, remove, re-encrypt, encrypt/decrypt, record sightings,
dismiss a visitor), and SIGKILLs it
after a random delay drawn around the operation's measured duration. Afterwards the
gallery must open, pass ``PRAGMA integrity_check``, and hold exactly the state before the
operation or the state after it (compared person by person: name -> multiset of
(embedding, thumbnail)), with the passphrase that goes with that state.

Fuzz (``tools/fuzz_inputs.py``): hypothesis generates import archives (valid ones, then mutated manifests, bad
``.npy`` headers, unsafe member names, lying sizes, corrupted bytes, encrypted ones),
image files. Every case must end in success or a FaceAppError; any
other exception, or a case slower than the hang limit, is a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from stress_data import (  # noqa: F401
    DIM,
    FAST_KDF,
    HANG_LIMIT_S,
    JPEG,
    MODEL,
    PASSPHRASES,
    SIGHTINGS,
    State,
    logical_state,
    sighting_rows,
    sightings_for,
    templates_for,
)

from faceapp.errors import FaceAppError
from faceapp.storage.gallery import Gallery, NewTemplate, PersonRecord


def _content(ts: list[NewTemplate]) -> list[tuple[bytes, bytes | None]]:
    return [(t.embedding.astype("<f4").tobytes(), t.thumbnail) for t in ts]


def expected_after(state: State, op: dict) -> State:
    """The state ``op`` leads to from ``state`` (computed here, not by running it)."""
    new = dict(state)
    kind = op["kind"]
    if kind == "enroll":
        new[op["name"]] = tuple(sorted(_content(templates_for(op["seed"], op["count"])), key=repr))
    elif kind == "import":
        for k, name in enumerate(op["names"]):
            rows = _content(templates_for(op["seed"] + k, op["count"]))
            new[name] = tuple(sorted(list(new.get(name, ())) + rows, key=repr))
    elif kind == "merge":
        new[op["target"]] = tuple(sorted(list(new[op["target"]]) + list(new.pop(op["source"])), key=repr))
        rows = [(op["target"] if r[0] == op["source"] else r[0], *r[1:]) for r in new.get(SIGHTINGS, ())]
        _set_sightings(new, rows)
    elif kind == "remove":
        del new[op["name"]]
        _set_sightings(new, [r for r in new.get(SIGHTINGS, ()) if r[0] != op["name"]])
    elif kind == "record":
        _set_sightings(new, list(new.get(SIGHTINGS, ())) + list(sighting_rows(sightings_for(op["seed"], op["people"], op["count"]))))
    elif kind == "dismiss":
        _set_sightings(new, [r for r in new.get(SIGHTINGS, ()) if not (r[1] and r[2] == op["source"])])
    return new


def _set_sightings(state: State, rows: list) -> None:
    state.pop(SIGHTINGS, None)
    if rows:
        state[SIGHTINGS] = tuple(sorted(rows, key=repr))


def run_op(path: Path, op: dict) -> None:
    """Perform ``op`` on the gallery (this is what the killed worker does)."""
    with Gallery(path, passphrase=op.get("passphrase")) as g:
        kind = op["kind"]
        if kind == "enroll":
            g.add_person(op["name"], templates_for(op["seed"], op["count"]))
        elif kind == "import":
            records = [
                PersonRecord(name, 1.0, tuple(templates_for(op["seed"] + k, op["count"])))
                for k, name in enumerate(op["names"])
            ]
            g.import_people(records, on_conflict="merge")
        elif kind == "merge":
            g.merge(op["source"], op["target"])
        elif kind == "remove":
            g.remove(op["name"])
        elif kind == "record":
            g.record(sightings_for(op["seed"], op["people"], op["count"]), purge=False)
        elif kind == "dismiss":
            for visitor in {s.visitor for s in g.sightings(unknown=True) if s.visitor and s.source == op["source"]}:
                g.dismiss_visitor(visitor)
        elif kind == "rekey":
            g.change_passphrase(op["passphrase"], op["new_passphrase"], kdf=FAST_KDF)
        elif kind == "encrypt":
            g.encrypt(op["new_passphrase"], kdf=FAST_KDF)
        elif kind == "decrypt":
            g.decrypt(op["passphrase"])
        else:
            raise ValueError(kind)


def _worker(path: str, op_json: str) -> int:
    op = json.loads(op_json)
    print("ready", flush=True)
    start = time.perf_counter()
    run_op(Path(path), op)
    print(f"done {time.perf_counter() - start:.4f}", flush=True)
    return 0


# --------------------------------------------------------------------------- kill loop


@dataclass
class KillReport:
    iterations: int = 0
    kills: int = 0  # the worker was SIGKILLed while running
    completed: int = 0  # the operation finished before the kill was due
    outcomes: Counter = field(default_factory=Counter)  # "old"/"new" per kind
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"kill loop: {self.iterations} iterations, {self.kills} SIGKILLs mid-operation, "
            f"{self.completed} finished first; outcomes {kinds}; {len(self.failures)} failure(s); "
            f"{self.seconds:.1f} s"
        )


def _choose_op(rng: random.Random, state: State, passphrase: str | None, counter: int) -> dict:
    names = sorted(n for n in state if n != SIGHTINGS)
    sources = sorted({r[2] for r in state.get(SIGHTINGS, ()) if r[1]})
    choices = ["enroll", "import", "enroll", "record"] + (["dismiss"] if sources else [])
    if len(names) >= 2:
        choices += ["merge"]
    if len(names) >= 3:
        choices += ["remove"]
    choices += ["rekey"] * 2
    kind = rng.choice(choices)
    op: dict = {"kind": kind, "passphrase": passphrase}
    if kind == "enroll":
        op.update(name=f"person {counter}", seed=counter * 1000, count=rng.randint(5, 40))
    elif kind == "import":
        existing = rng.sample(names, min(len(names), 2))
        op.update(names=existing + [f"imported {counter}-{k}" for k in range(rng.randint(5, 30))],
                  seed=counter * 1000, count=rng.randint(1, 4))
    elif kind == "merge":
        source, target = rng.sample(names, 2)
        op.update(source=source, target=target)
    elif kind == "remove":
        op.update(name=rng.choice(names))
    elif kind == "record":
        op.update(seed=counter * 1000, people=rng.sample(names, min(len(names), 2)), count=rng.randint(3, 40))
    elif kind == "dismiss":
        op.update(source=rng.choice(sources))
    elif passphrase is None:
        op.update(kind="encrypt", new_passphrase=PASSPHRASES[0])
    elif rng.random() < 0.2:
        op.update(kind="decrypt")
    else:
        op.update(new_passphrase=PASSPHRASES[1] if passphrase == PASSPHRASES[0] else PASSPHRASES[0])
    return op


def _open_any(path: Path, candidates: list[str | None]) -> tuple[Gallery, str | None]:
    last: Exception | None = None
    for pw in candidates:
        try:
            g = Gallery(path, passphrase=pw)
        except FaceAppError as e:
            last = e
            continue
        if pw is not None and not g.encrypted:
            g.close()
            continue
        return g, pw
    raise AssertionError(f"gallery opens with none of the passphrases: {last}")


def kill_loop(count: int, seed: int = 0, workdir: Path | None = None, log=print) -> KillReport:
    """SIGKILL a worker ``count`` times; see the module docstring."""
    rng = random.Random(seed)
    report = KillReport()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        path = Path(scratch) / "gallery.sqlite3"
        with Gallery(path) as g:
            g.add_person("seed person", templates_for(1, 10))
            g.add_person("second person", templates_for(2, 10))
        state, passphrase = {}, None
        with Gallery(path) as g:
            state = logical_state(g)
        durations: dict[str, float] = {}
        for i in range(count):
            op = _choose_op(rng, state, passphrase, i + 10)
            after = expected_after(state, op)
            new_pw = op.get("new_passphrase", passphrase) if op["kind"] != "decrypt" else None
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "_worker", str(path), json.dumps(op)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                proc.kill()
                proc.wait()
                report.failures.append(f"iteration {i}: worker did not start: {proc.stderr.read()[-500:]}")
                break
            typical = durations.get(op["kind"], 0.05)
            time.sleep(rng.uniform(0.0, typical * 1.3))
            proc.send_signal(signal.SIGKILL)
            rc = proc.wait()
            out = proc.stdout.read()
            err = proc.stderr.read()
            if "done" in out:
                report.completed += 1
                durations[op["kind"]] = float(out.split()[-1])
            elif rc == -signal.SIGKILL:
                report.kills += 1
            else:
                report.failures.append(f"iteration {i}: worker failed ({op['kind']}): {err.strip()[-300:]}")
            report.iterations += 1
            # Verify: integrity, then old or new state with the matching passphrase.
            try:
                conn = sqlite3.connect(str(path))
                try:
                    check = [r[0] for r in conn.execute("PRAGMA integrity_check")]
                finally:
                    conn.close()
                if check != ["ok"]:
                    raise AssertionError(f"integrity_check: {check[:3]}")
                g, pw = _open_any(path, list(dict.fromkeys([passphrase, new_pw, None])))
                with g:
                    got = logical_state(g)
                if got == state and pw == passphrase:
                    report.outcomes[f"{op['kind']}=old"] += 1
                    if "done" not in out:  # killed before the commit: aim later next time
                        durations[op["kind"]] = durations.get(op["kind"], 0.05) * 1.5
                elif got == after and pw == new_pw:
                    report.outcomes[f"{op['kind']}=new"] += 1
                    state, passphrase = after, new_pw
                else:
                    raise AssertionError(
                        f"{op['kind']}: neither the old nor the new state (passphrase {pw!r}; "
                        f"people {sorted(got)[:5]}...)"
                    )
            except AssertionError as e:
                report.failures.append(f"iteration {i}: {e}")
                log(f"FAIL iteration {i}: {e}")
                break
            if (i + 1) % 25 == 0:
                log(f"  {i + 1}/{count}: {report.kills} kills mid-operation, {len(report.failures)} failures")
    report.seconds = time.perf_counter() - started
    return report


def concurrent_writers(path: Path, writers: int = 2, people_each: int = 10, timeout_s: float = 60) -> tuple[int, int]:
    """Several processes add people to one gallery at once; returns (added, refused-as-busy).
    Raises AssertionError on anything else (a crash, corruption, a lost person)."""
    code = (
        "import sys; sys.path[:0] = [{repo!r}, {tools!r}]; from stress_data import templates_for;"
        "from faceapp.storage.gallery import Gallery; from faceapp.errors import GalleryError\n"
        "added = busy = 0\n"
        "with Gallery({path!r}, busy_timeout_ms=2000) as g:\n"
        "    for k in range({n}):\n"
        "        try:\n"
        "            g.add_person(f'w{w} p{{k}}', templates_for({w} * 100 + k, 3)); added += 1\n"
        "        except GalleryError as e:\n"
        "            assert 'busy' in str(e), e; busy += 1\n"
        "print(added, busy)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code.format(repo=str(REPO), tools=str(REPO / "tools"), path=str(path), n=people_each, w=w)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )
        for w in range(writers)
    ]
    added = busy = 0
    for p in procs:
        out, err = p.communicate(timeout=timeout_s)
        if p.returncode != 0:
            raise AssertionError(f"a writer failed: {err.strip()[-500:]}")
        a, b = (int(x) for x in out.split())
        added, busy = added + a, busy + b
    conn = sqlite3.connect(str(path))
    try:
        assert [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]
    finally:
        conn.close()
    with Gallery(path) as g:
        assert len(g.people()) == added, (len(g.people()), added)
    return added, busy


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        return _worker(argv[1], argv[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("kill", "fuzz", "all"))
    parser.add_argument("--count", type=int, default=50, help="kill iterations / fuzz cases per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default="archive,image,names,paths,rows", help="fuzz targets, comma-separated")
    parser.add_argument("--no-png-chunk-attack", action="store_true", help="skip the known OpenCV PNG allocation case")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    failed = False
    if args.what in ("kill", "all"):
        report = kill_loop(args.count, args.seed)
        print(report.describe())
        for f in report.failures:
            print("  ", f)
        failed |= bool(report.failures)
    if args.what in ("fuzz", "all"):
        from fuzz_inputs import fuzz

        fr = fuzz(args.count, tuple(args.targets.split(",")), args.seed, png_chunk_attack=not args.no_png_chunk_attack)
        print(fr.describe())
        for k, v in sorted(fr.outcomes.items()):
            print(f"   {k}: {v}")
        for f in fr.failures:
            print("  ", f)
        failed |= bool(fr.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
