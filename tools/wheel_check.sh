#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment away from the checkout,
# and use it from another folder with an empty HOME: the models must come from inside the
# wheel. Run by CI (.ci/run); by hand: bash tools/wheel_check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="${FACEAPP_FIXTURES:-$here/../shared/fixtures/faces}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

python3 -m pip wheel --quiet --no-deps "$here" -w "$work/dist"
wheel=$(ls "$work"/dist/faceapp-*.whl)
size=$(python3 -c "import os, sys; print(os.path.getsize(sys.argv[1]) // (1 << 20))" "$wheel")
# (No "zipfile -l | grep -q": grep leaving early breaks the pipe, which pipefail reports as a failure.)
python3 -c "import sys, zipfile; sys.exit('faceapp/models/sface_2021dec.weights.h5' not in zipfile.ZipFile(sys.argv[1]).namelist())" "$wheel" \
  || { echo "the wheel lacks the models" >&2; exit 1; }
echo "wheel: $(basename "$wheel") (${size} MiB, models inside)"

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel"
mkdir -p "$work/elsewhere" "$work/home"
cd "$work/elsewhere"
run() { env -u FACEAPP_MODELS -u FACEAPP_GALLERY HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" \
        XDG_CACHE_HOME="$work/home/.cache" "$work/venv/bin/faceapp" "$@"; }
run --version
run enroll obama "$fixtures/obama/obama_1.jpg" "$fixtures/obama/obama_2.jpg"
run identify "$fixtures/obama/obama_3.jpg" --json > identify.json
"$work/venv/bin/python" - identify.json <<'PY'
import json, sys
faces = json.load(open(sys.argv[1]))["faces"]
assert [f["name"] for f in faces] == ["obama"], faces
print("identify from the installed wheel: obama, similarity", faces[0]["similarity"])
PY
test -f "$work/home/.local/share/faceapp/gallery.sqlite3" || { echo "the default gallery was not in the user data folder" >&2; exit 1; }
echo "wheel check passed"
