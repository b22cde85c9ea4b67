#!/usr/bin/env bash
# Fetch the ONNX Runtime CPU library from the `onnxruntime` PyPI wheel (a package registry; no
# other download) into target/onnxruntime/ and print its path. Needs python3 with pip.
# Usage: export FRAMEWIRE_ONNXRUNTIME_LIB=$(bash deploy/get-onnxruntime.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${ONNXRUNTIME_VERSION:-1.32.0}"
DIR=target/onnxruntime
LIB="$DIR/libonnxruntime.so.$VERSION"
if [ ! -f "$LIB" ]; then
  mkdir -p "$DIR"
  python3 -m pip download "onnxruntime==$VERSION" --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 -d "$DIR" -q >&2
  python3 - "$DIR" "$VERSION" <<'PY'
import glob, os, sys, zipfile
d, v = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(d, f"onnxruntime-{v}-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = f"onnxruntime/capi/libonnxruntime.so.{v}"
    with open(os.path.join(d, os.path.basename(name)), "wb") as out:
        out.write(z.read(name))
PY
fi
echo "$PWD/$LIB"
