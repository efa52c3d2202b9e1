"""Effect of ``faceapp train --balance none|sampling|weights`` on a deliberately
imbalanced split of LFW (issue 19, "Class imbalance").

    python tools/measure_balance.py [--lfw DIR] [--majority 10] [--minority 60] [--seeds 0,1]

1. Builds an imbalanced dataset in a temporary folder (``NAME/*.jpg`` symlinks into
   ``--lfw``'s ``images/``): the ``--majority`` people with the most photos (at least
   ``--majority-min`` each) keep all of them; ``--minority`` further people (with at least
   ``--minority-keep`` photos, the next ones in name order after a fixed shuffle) are cut
   to ``--minority-keep`` photos each.
2. For every seed, runs ``faceapp train DIR --json`` (the app's own CLI, in a subprocess)
   once per balance mode with everything else equal: same people, same split by person
   (``--seed``), same validation pairs, same steps. The face crops are cached in the temp
   folder after the first run, so only the first run detects faces.
3. Prints, per run, the validation verification accuracy (k-fold) and ROC AUC that the
   training reports before and after (best epoch), the head's last training loss, and
   the time; then the spread of each mode over the seeds. ``--seed`` also changes the
   split and the pairs, so the spread over seeds is data spread plus training noise.

The validation people are held out (never trained on), split at random from both groups;
the script also says how many majority/minority people landed on each side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("none", "sampling", "weights")


def build_imbalanced(lfw: Path, dest: Path, majority: int, majority_min: int, minority: int, minority_keep: int) -> dict:
    images = lfw / "images" if (lfw / "images").is_dir() else lfw
    people: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(images.glob("*.jpg")):
        people[path.stem.rsplit("_", 1)[0]].append(path)
    big = sorted((name for name, paths in people.items() if len(paths) >= majority_min),
                 key=lambda name: (-len(people[name]), name))[:majority]
    if len(big) < majority:
        raise SystemExit(f"only {len(big)} people with >= {majority_min} images in {images}")
    rest = sorted(name for name, paths in people.items() if len(paths) >= minority_keep and name not in big)
    random.Random(12345).shuffle(rest)
    small = sorted(rest[:minority])
    for name in big + small:
        folder = dest / name
        folder.mkdir(parents=True)
        for path in people[name][: None if name in big else minority_keep]:
            (folder / path.name).symlink_to(path.resolve())
    return {"majority": {name: len(people[name]) for name in big}, "minority": {name: minority_keep for name in small}}


def run_training(data: Path, out: Path, mode: str, seed: int, args, cache: Path) -> dict:
    command = [sys.executable, "-m", "faceapp", "train", str(data), "--out", str(out), "--json", "-q", "--device", "cpu",
               "--balance", mode, "--seed", str(seed), "--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps),
               "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--freeze", str(args.freeze),
               "--val-pairs", str(args.val_pairs), "--val-fraction", str(args.val_fraction), "--patience", "99",
               "--cache-dir", str(cache)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"faceapp train --balance {mode} --seed {seed} failed ({done.returncode})")
    report = json.loads(done.stdout[done.stdout.index("{"):])
    history = json.loads(Path(report["outputs"]["history"]).read_text(encoding="utf-8"))["history"]
    people = json.loads((out / "people.json").read_text(encoding="utf-8"))
    return {"report": report, "history": history, "people": people, "seconds": seconds, "command": command}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=Path("/work/shared/data/lfw"))
    parser.add_argument("--majority", type=int, default=10, help="people kept whole (default: 10)")
    parser.add_argument("--majority-min", type=int, default=10, help="... each with at least this many photos (default: 10)")
    parser.add_argument("--minority", type=int, default=60, help="people cut to --minority-keep photos (default: 60)")
    parser.add_argument("--minority-keep", type=int, default=2, help="(default: 2)")
    parser.add_argument("--seeds", default="0", help="comma-separated (default: 0)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="steps per epoch (default: 6)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--freeze", type=int, default=13)
    parser.add_argument("--val-pairs", type=int, default=200)
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--keep", type=Path, help="keep the temp folder here instead (for inspection)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = args.modes.split(",")

    with tempfile.TemporaryDirectory(prefix="measure-balance-") as temp:
        work = args.keep or Path(temp)
        data = work / "data"
        groups = build_imbalanced(args.lfw, data, args.majority, args.majority_min, args.minority, args.minority_keep)
        big, small = groups["majority"], groups["minority"]
        print(f"imbalanced set: {len(big)} majority people with {sum(big.values())} images ({min(big.values())}-{max(big.values())} each), "
              f"{len(small)} minority people with {args.minority_keep} images each ({sum(small.values())} images)", flush=True)
        rows = []
        for seed in seeds:
            for mode in modes:
                result = run_training(data, work / f"model-{mode}-{seed}", mode, seed, args, work / "cache")
                report, history, people = result["report"], result["history"], result["people"]
                validation = report["validation"]
                train_big = sum(name in big for name in people["train"])
                val_big = sum(name in big for name in people["validation"])
                row = {"seed": seed, "mode": mode, "before_acc": validation["before"]["accuracy"], "before_auc": validation["before"]["auc"],
                       "acc": validation["after"]["accuracy"], "auc": validation["after"]["auc"], "best_epoch": validation["best_epoch"],
                       "pairs": validation["pairs"], "last_acc": history["val_verification_accuracy"][-1],
                       "last_auc": history["val_verification_auc"][-1], "loss": history["loss"][-1], "head_acc": history["accuracy"][-1],
                       "train": f"{train_big}+{len(people['train']) - train_big} ({report['data']['train']['images']} img)",
                       "val": f"{val_big}+{len(people['validation']) - val_big} ({report['data']['validation']['images']} img)",
                       "seconds": result["seconds"]}
                rows.append(row)
                print(f"seed {seed} --balance {mode:8s}: val acc {row['before_acc']:.4f} -> {row['acc']:.4f}, "
                      f"AUC {row['before_auc']:.5f} -> {row['auc']:.5f} (best epoch {row['best_epoch']}; last epoch {row['last_acc']:.4f}, {row['last_auc']:.5f}), "
                      f"head loss {row['loss']:.3f}, {row['seconds']:.0f} s", flush=True)
        print("\ncommand of each run: " + " ".join(result["command"][1:]).replace(str(work), "$TMP"))
        print("\n| seed | balance | train people (major+minor) | val people (major+minor) | pairs | val acc before | val acc after | AUC before | AUC after | best epoch | last-epoch acc | last-epoch AUC | last head loss | head acc | s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['seed']} | {r['mode']} | {r['train']} | {r['val']} | {r['pairs']} | {r['before_acc']:.4f} | {r['acc']:.4f} | "
                  f"{r['before_auc']:.5f} | {r['auc']:.5f} | {r['best_epoch']} | {r['last_acc']:.4f} | {r['last_auc']:.5f} | {r['loss']:.3f} | {r['head_acc']:.3f} | {r['seconds']:.0f} |")
        if len(seeds) > 1:
            print("\nover seeds, mean ± std of the change from before training (best epoch; last epoch):")
            for mode in modes:
                mine = [r for r in rows if r["mode"] == mode]
                for label, acc, auc in (("best", "acc", "auc"), ("last", "last_acc", "last_auc")):
                    dacc = [r[acc] - r["before_acc"] for r in mine]
                    dauc = [r[auc] - r["before_auc"] for r in mine]
                    print(f"  {mode:8s} {label}: accuracy {statistics.mean(dacc):+.4f} ± {statistics.stdev(dacc):.4f}, "
                          f"AUC {statistics.mean(dauc):+.5f} ± {statistics.stdev(dauc):.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
