"""Memory and speed of reading the sharded crop cache (issue 19, "Data of any size").

    python tools/measure_shards.py [--lfw DIR] [--base 250] [--sizes 1000,10000] [--passes 2]

1. Finds and aligns ``--base`` LFW images once (``prepare_shards``, lossless PNG shards),
   and reports the bytes per crop as JPEG quality 95 and as PNG.
2. SYNTHETIC sets: for each size, the shard writer's test mode (``write_crop_shards``)
   repeats those real crops until the size is reached; every repeat is passed through the
   training augmentation (``augment_fn``), so the sets are NOT that many distinct faces.
3. Each set is read in a fresh process: ``shard_dataset`` with augmentation, batch 64,
   shuffle buffer 4096, for ``--passes`` passes after 3 warm-up batches. It reports
   images/s and the peak RSS (``resource.getrusage``) after building the pipeline and at
   the end: flat memory means the peak does not grow with the size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 64


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def read_benchmark(shards: str, passes: int) -> dict:
    """Runs in a child process: read augmented batches, time them, report peak RSS."""
    from faceapp.training.config import AugmentConfig
    from faceapp.training.data import augment_fn
    from faceapp.training.shards import read_manifest, shard_dataset

    images = read_manifest(shards)["images"]
    dataset = shard_dataset(shards, batch_size=BATCH, augment=augment_fn(AugmentConfig(), 0), shuffle_buffer=4096)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    after_build = peak_rss_mib()
    steps = max(1, passes * images // BATCH)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    seconds = time.perf_counter() - start
    return {"images": images, "batches": steps, "images_per_s": steps * BATCH / seconds,
            "peak_rss_mib_after_warmup": after_build, "peak_rss_mib": peak_rss_mib()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, help="LFW folder (default: FACEAPP_LFW_DIR or the usual place)")
    parser.add_argument("--base", type=int, default=250, help="real LFW images to align (default: 250)")
    parser.add_argument("--sizes", default="1000,10000", help="crops per synthetic set (default: 1000,10000)")
    parser.add_argument("--passes", type=int, default=2, help="passes over each set to time (default: 2)")
    parser.add_argument("--read", metavar="SHARDS", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read_benchmark(args.read, args.passes)))
        return 0

    import numpy as np

    from faceapp.paths import lfw_dir
    from faceapp.training.config import AugmentConfig, DataConfig
    from faceapp.training.data import augment_fn
    from faceapp.training.shards import ShardConfig, encode_crop, prepare_shards, read_shards, write_crop_shards

    lfw = args.lfw or lfw_dir()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        config = DataConfig(lfw, min_images=2, max_images_per_person=2, max_people=(args.base + 1) // 2)
        start = time.perf_counter()
        report = prepare_shards(config, work / "real", shard_config=ShardConfig(encoding="png"))
        crops, labels, names, paths, _ = read_shards(work / "real")
        print(f"aligned {report.images} real LFW crops ({len(names)} people) in {time.perf_counter() - start:.1f} s")
        jpeg = np.mean([len(encode_crop(c, ShardConfig(encoding="jpeg"))) for c in crops])
        png = np.mean([len(encode_crop(c, ShardConfig(encoding="png"))) for c in crops])
        print(f"bytes per crop: JPEG q95 {jpeg:.0f}, PNG {png:.0f} (PNG / JPEG = {png / jpeg:.1f}x)")

        import tensorflow as tf

        augment = tf.function(augment_fn(AugmentConfig(), 0))

        def augment_bgr(crop):
            rgb = tf.constant(crop[..., ::-1].astype(np.float32))
            return np.clip(np.rint(augment(rgb).numpy()), 0, 255).astype(np.uint8)[..., ::-1]

        for size in (int(s) for s in args.sizes.split(",")):
            copies = -(-size // len(crops))
            folder = work / f"synthetic-{size}"
            start = time.perf_counter()
            manifest = write_crop_shards(crops, labels, names, paths, folder, copies=copies, augment=augment_bgr)
            print(f"\nSYNTHETIC set of {manifest['images']} crops: the {len(crops)} real LFW crops written {copies}x, "
                  f"every repeat augmented (test mode of the shard writer); written in {time.perf_counter() - start:.1f} s",
                  flush=True)
            child = subprocess.run([sys.executable, __file__, "--read", str(folder), "--passes", str(args.passes)],
                                   capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            size_mib = sum(p.stat().st_size for p in folder.glob("*.tfrecord")) / 2**20
            print(f"  shards {size_mib:.1f} MiB; read with augmentation: {result['images_per_s']:.0f} images/s "
                  f"({result['batches']} batches of {BATCH}); peak RSS {result['peak_rss_mib_after_warmup']:.0f} MiB "
                  f"after warm-up, {result['peak_rss_mib']:.0f} MiB at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
