"""Effect of ``faceapp train --balance none|sampling|weights`` on a deliberately
imbalanced split of LFW (issue 19, "Class imbalance").

    python tools/measure_balance.py [--lfw DIR] [--majority 12] [--minority 100] [--seeds 0,1,2]

1. Builds an imbalanced dataset in a temporary folder (``NAME/*.jpg`` symlinks into
   ``--lfw``'s ``images/``): the ``--majority`` people with the most photos (at least
   ``--majority-min`` each) keep all of them; ``--minority`` further people (with at least
   ``--minority-keep`` photos, the next ones in name order after a fixed shuffle) are cut
   to ``--minority-keep`` photos each. These are the *training* people. ``--validation``
   further people (``--validation-min`` photos or more, kept whole) are only validated on.
   Faces are found and aligned once by the app's loader (``load_faces``, cached in the
   temp folder).
2. Per seed, before training, held-out images of the training people are set aside at
   random: ``--hold-majority`` of each majority person and ``--hold-minority`` of each
   minority person (default 2 and 1: about 10 training images per majority person
   against 1 per minority person, about 10:1). The rest is trained on.
3. Per seed, the three balance modes are trained with everything else equal (same
   people, same held-out images, same validation pairs, same seed, same steps), in this
   process with the library's own loop (``faceapp.training.loop.train``, what
   ``faceapp train`` runs), plus one extra Keras callback that reads the training model's
   margin head (``margin_head``: one centre per training person; the loop does not return
   it). At epoch 0 (head centres = each person's mean embedding, identical for the three
   modes) and after every epoch, the held-out images are embedded by the current backbone
   and classified by the head (argmax of the cosine with the centres, no margin): overall
   accuracy, macro recall and macro F1 over the training people (scikit-learn), recall on
   the minority and on the majority people, and the share of the minority's held-out
   images that the head gives to a majority person. This is where class imbalance acts:
   the head is what the skewed class frequencies bias.
4. Also printed, as before: the verification accuracy (k-fold) and ROC AUC of the
   validation people's pairs before and after (best epoch, by AUC) training.

The summary gives, per mode, mean ± std over the seeds at the last epoch, and the
differences to ``none`` paired by seed (same held-out images, same seed). CPU training is
not bit-reproducible here, so the seed spread includes run-to-run noise.

Known limit: all runs share this process and its memory grows by about 1.2 GB a run
(``keras.backend.clear_session`` does not give it back); 9 runs need about 11 GB, so on a
small machine run a few seeds at a time (``--seeds 0``, ``--seeds 1``, ...).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODES = ("none", "sampling", "weights")
HEAD_KEYS = ("acc", "macro_recall", "macro_f1", "minority_recall", "majority_recall", "minority_to_majority")


def build_imbalanced(lfw: Path, dest: Path, majority: int, majority_min: int, minority: int, minority_keep: int,
                     validation: int, validation_min: int) -> dict:
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
    val = sorted([name for name in rest[minority:] if len(people[name]) >= validation_min][:validation])
    for name in big + small + val:
        folder = dest / name
        folder.mkdir(parents=True)
        for path in people[name][: minority_keep if name in small else None]:
            (folder / path.name).symlink_to(path.resolve())
    return {"majority": {name: len(people[name]) for name in big}, "minority": {name: minority_keep for name in small},
            "validation": {name: len(people[name]) for name in val}}


def hold_out(faces, minority: set[str], hold_majority: int, hold_minority: int, seed: int):
    """``(fit_faces, held_images, held_labels)``: per person, ``hold_*`` random images set
    aside (labels keep ``faces.names``' order); every person keeps at least one to train on."""
    from faceapp.training.data import FaceSet

    rng = np.random.default_rng(1000 + seed)
    fit, held = [], []
    for label, name in enumerate(faces.names):
        rows = rng.permutation(np.flatnonzero(faces.labels == label))
        count = min(hold_minority if name in minority else hold_majority, len(rows) - 1)
        held.extend(rows[:count])
        fit.extend(rows[count:])
    fit, held = np.sort(np.array(fit)), np.sort(np.array(held))
    fit_faces = FaceSet(faces.images[fit], faces.labels[fit], faces.names, tuple(faces.paths[i] for i in fit), faces.detected[fit])
    return fit_faces, faces.images[held], faces.labels[held]


def head_probe(held_images, held_labels, minority_mask):
    """A Keras callback classifying the held-out images with the training model's margin
    head at epoch 0 and after every epoch; ``probe.epochs`` is the list of metric dicts."""
    import keras
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    from faceapp.training.validation import embed_faces

    class HeadProbe(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: list[dict] = []

        def measure(self):
            head = self.model.get_layer("margin_head")
            backbone = next(layer for layer in self.model.layers if isinstance(layer, keras.Model))
            cosines = np.asarray(head.cosines(embed_faces(backbone, held_images)))
            predicted = cosines.argmax(axis=1)
            classes = list(range(head.classes))
            minor = minority_mask[held_labels]
            correct = predicted == held_labels
            self.epochs.append({
                "acc": accuracy_score(held_labels, predicted),
                "macro_recall": recall_score(held_labels, predicted, labels=classes, average="macro", zero_division=0),
                "macro_f1": f1_score(held_labels, predicted, labels=classes, average="macro", zero_division=0),
                "minority_recall": float(correct[minor].mean()),
                "majority_recall": float(correct[~minor].mean()),
                "minority_to_majority": float((~minority_mask[predicted[minor]]).mean()),
            })

        def on_train_begin(self, logs=None):
            self.measure()

        def on_epoch_end(self, epoch, logs=None):
            self.measure()

    return HeadProbe()


def mean_std(values) -> str:
    values = list(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):+.4f} ± {spread:.4f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=Path("/work/shared/data/lfw"))
    parser.add_argument("--majority", type=int, default=12, help="training people kept whole (default: 12)")
    parser.add_argument("--majority-min", type=int, default=11, help="... each with at least this many photos (default: 11)")
    parser.add_argument("--minority", type=int, default=100, help="training people cut to --minority-keep photos (default: 100)")
    parser.add_argument("--minority-keep", type=int, default=2, help="(default: 2)")
    parser.add_argument("--hold-majority", type=int, default=2, help="held-out images per majority person (default: 2)")
    parser.add_argument("--hold-minority", type=int, default=1, help="held-out images per minority person (default: 1)")
    parser.add_argument("--validation", type=int, default=40, help="validation-only people, kept whole (default: 40)")
    parser.add_argument("--validation-min", type=int, default=3, help="... each with at least this many photos (default: 3)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated (default: 0,1,2)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="steps per epoch (default: 10)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--freeze", type=int, default=13)
    parser.add_argument("--val-pairs", type=int, default=200)
    parser.add_argument("--head-init", choices=("means", "random"), default="means",
                        help="head centres start at each person's mean embedding (faceapp train's default) or random "
                             "(Glorot, as with --from-scratch; TrainConfig.init_head_from_means=False) (default: means)")
    parser.add_argument("--device", choices=("cpu", "auto"), default="cpu")
    parser.add_argument("--keep", type=Path, help="keep the temp folder here instead (for inspection)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = args.modes.split(",")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    if args.device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    from faceapp.training.config import DataConfig, TrainConfig
    from faceapp.training.data import load_faces
    from faceapp.training.loop import train

    with tempfile.TemporaryDirectory(prefix="measure-balance-") as temp:
        work = args.keep or Path(temp)
        data = work / "data"
        groups = build_imbalanced(args.lfw, data, args.majority, args.majority_min, args.minority, args.minority_keep,
                                  args.validation, args.validation_min)
        started = time.perf_counter()
        loaded = load_faces(DataConfig(data_dir=data, cache_dir=work / "cache"))
        faces = loaded.faces
        val_names = tuple(name for name in faces.names if name in groups["validation"])
        train_names = tuple(name for name in faces.names if name not in groups["validation"])
        train_all, val_faces = faces.subset(train_names), faces.subset(val_names)
        minority = set(groups["minority"]) & set(train_names)
        minority_mask = np.array([name in minority for name in train_names])
        counts = train_all.counts()
        print(f"faces found in {time.perf_counter() - started:.0f} s ({len(loaded.no_face)} images without a face left out, "
              f"{len(loaded.dropped_people)} people dropped); training people: {int((~minority_mask).sum())} majority "
              f"({int(counts[~minority_mask].sum())} images, {counts[~minority_mask].min()}-{counts[~minority_mask].max()} each), "
              f"{len(minority)} minority ({int(counts[minority_mask].sum())} images); validation: {len(val_names)} people, "
              f"{len(val_faces)} images", flush=True)
        rows = []
        for seed in seeds:
            fit_faces, held_images, held_labels = hold_out(train_all, minority, args.hold_majority, args.hold_minority, seed)
            fit_counts = fit_faces.counts()
            ratio = fit_counts[~minority_mask].mean() / fit_counts[minority_mask].mean()
            print(f"seed {seed}: training on {len(fit_faces)} images (majority {fit_counts[~minority_mask].min()}-"
                  f"{fit_counts[~minority_mask].max()} per person, minority {fit_counts[minority_mask].min()}-"
                  f"{fit_counts[minority_mask].max()}; {ratio:.1f}:1), {len(held_labels)} held out "
                  f"({int(minority_mask[held_labels].sum())} minority, {int((~minority_mask[held_labels]).sum())} majority)", flush=True)
            for mode in modes:
                config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, freeze=args.freeze,
                                     balance=mode, patience=99, val_pairs=args.val_pairs, steps_per_epoch=args.steps, verbose=0,
                                     init_head_from_means=args.head_init == "means")
                probe = head_probe(held_images, held_labels, minority_mask)
                began = time.perf_counter()
                result = train(fit_faces, val_faces, config, work / f"run-{mode}-{seed}", seed=seed, callbacks=(probe,))
                row = {"seed": seed, "mode": mode, "before": probe.epochs[0], "last": probe.epochs[-1],
                       "before_acc": result.before.accuracy, "before_auc": result.before.auc, "val_acc": result.best.accuracy,
                       "val_auc": result.best.auc, "best_epoch": result.best_epoch,
                       "last_val_acc": result.history["val_verification_accuracy"][-1],
                       "last_val_auc": result.history["val_verification_auc"][-1],
                       "loss": result.history["loss"][-1], "train_acc": result.history["accuracy"][-1],
                       "seconds": time.perf_counter() - began}
                rows.append(row)
                b, h = row["before"], row["last"]
                print(f"seed {seed} --balance {mode:8s}: held-out head acc {b['acc']:.3f} -> {h['acc']:.3f}, macro recall "
                      f"{b['macro_recall']:.3f} -> {h['macro_recall']:.3f}, macro F1 {b['macro_f1']:.3f} -> {h['macro_f1']:.3f}, "
                      f"minority recall {b['minority_recall']:.3f} -> {h['minority_recall']:.3f}, majority recall "
                      f"{b['majority_recall']:.3f} -> {h['majority_recall']:.3f}, minority given to majority "
                      f"{b['minority_to_majority']:.3f} -> {h['minority_to_majority']:.3f}; val verification acc "
                      f"{row['before_acc']:.4f} -> {row['val_acc']:.4f}, AUC {row['before_auc']:.5f} -> {row['val_auc']:.5f} "
                      f"(best epoch {row['best_epoch']}); loss {row['loss']:.3f}; {row['seconds']:.0f} s", flush=True)
                del result, probe
                keras.backend.clear_session()
                gc.collect()
        print(f"\neach run: {args.epochs} epochs x {args.steps} steps of {args.batch_size}, lr {args.lr}, first {args.freeze} "
              f"of 14 stages frozen, arcface head ({args.head_init} init), augmentation on; head figures at the last epoch")
        print("\n| seed | balance | head acc | macro recall | macro F1 | minority recall | majority recall | minority -> majority "
              "| val acc before | val acc after (best) | AUC before | AUC after | best epoch | last loss | s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for seed in seeds:
            r0 = next(r for r in rows if r["seed"] == seed)
            b = r0["before"]
            print(f"| {seed} | epoch 0 (all modes) | {b['acc']:.3f} | {b['macro_recall']:.3f} | {b['macro_f1']:.3f} | "
                  f"{b['minority_recall']:.3f} | {b['majority_recall']:.3f} | {b['minority_to_majority']:.3f} | | | | | | | |")
            for r in (r for r in rows if r["seed"] == seed):
                h = r["last"]
                print(f"| {seed} | {r['mode']} | {h['acc']:.3f} | {h['macro_recall']:.3f} | {h['macro_f1']:.3f} | "
                      f"{h['minority_recall']:.3f} | {h['majority_recall']:.3f} | {h['minority_to_majority']:.3f} | "
                      f"{r['before_acc']:.4f} | {r['val_acc']:.4f} | {r['before_auc']:.5f} | {r['val_auc']:.5f} | "
                      f"{r['best_epoch']} | {r['loss']:.3f} | {r['seconds']:.0f} |")
        print("\nover seeds, mean ± std (head figures: last epoch; verification: change from before, best epoch):")
        print("| balance | " + " | ".join(HEAD_KEYS) + " | val acc change | val AUC change |")
        print("|---|" + "---|" * (len(HEAD_KEYS) + 2))
        print("| epoch 0 | " + " | ".join(mean_std(r["before"][k] for r in rows if r["mode"] == modes[0]) for k in HEAD_KEYS) + " | | |")
        for mode in modes:
            mine = [r for r in rows if r["mode"] == mode]
            print(f"| {mode} | " + " | ".join(mean_std(r["last"][k] for r in mine) for k in HEAD_KEYS)
                  + f" | {mean_std(r['val_acc'] - r['before_acc'] for r in mine)} | {mean_std(r['val_auc'] - r['before_auc'] for r in mine)} |")
        if "none" in modes:
            print("\npaired by seed, mode minus none (mean ± std over seeds; the per-seed differences in brackets):")
            print("| balance | " + " | ".join(HEAD_KEYS) + " | val acc | val AUC |")
            print("|---|" + "---|" * (len(HEAD_KEYS) + 2))
            base = {r["seed"]: r for r in rows if r["mode"] == "none"}
            for mode in (m for m in modes if m != "none"):
                mine = [r for r in rows if r["mode"] == mode]
                cells = []
                for k in HEAD_KEYS:
                    diffs = [r["last"][k] - base[r["seed"]]["last"][k] for r in mine]
                    cells.append(f"{mean_std(diffs)} [{', '.join(f'{d:+.3f}' for d in diffs)}]")
                for k in ("val_acc", "val_auc"):
                    diffs = [r[k] - base[r["seed"]][k] for r in mine]
                    cells.append(mean_std(diffs))
                print(f"| {mode} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
