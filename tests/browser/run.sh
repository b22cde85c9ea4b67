#!/usr/bin/env bash
# Real-browser test of the demo page: starts a framewire server on a free loopback port, waits
# for GET /healthz, runs tests/browser/demo_test.mjs (headless /usr/bin/chromium driven by
# playwright-core, fake camera from tests/fixtures), and always stops the server.
#
#   bash tests/browser/run.sh       (FRAMEWIRE_BIN=path/to/framewire to choose the server)
#
# Needs: the server binary (default target/release/framewire, else target/debug/framewire),
# node >= 20 + npm, chromium (Debian package), curl, python3.
# Output: target/browser/demo.png (JPEG run), target/browser/demo-h264.png (H.264 run),
# target/browser/server.log.
set -euo pipefail

cd "$(dirname "$0")/../.."   # the repo root: the server finds models/ from there
# The release build by default; without one, the debug build that `cargo test` leaves (its
# dependencies are built with opt-level 3, so it is fast enough for 5 fps).
if [[ -z ${FRAMEWIRE_BIN:-} && ! -x target/release/framewire && -x target/debug/framewire ]]; then
  FRAMEWIRE_BIN=target/debug/framewire
fi
BIN=${FRAMEWIRE_BIN:-target/release/framewire}
echo "run.sh: server $BIN"
OUT=target/browser

[[ -x $BIN ]] || { echo "run.sh: no server binary at $BIN (cargo build --release, or set FRAMEWIRE_BIN)" >&2; exit 1; }
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || { echo "run.sh: no chromium (apt-get install -y chromium)" >&2; exit 1; }
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi

mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
LOG=$OUT/server.log

"$BIN" serve --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
SERVER=$!
cleanup() {
  local rc=$?
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  if [[ $rc -ne 0 ]]; then
    echo "run.sh: failed (exit $rc); last server log lines ($LOG):" >&2
    tail -n 30 "$LOG" >&2 || true
  fi
  exit $rc
}
trap cleanup EXIT

# Wait up to 60 s for the server (model loading takes a few seconds).
for _ in $(seq 1 120); do
  if curl -fs -o /dev/null --max-time 2 "$BASE/healthz"; then break; fi
  if ! kill -0 "$SERVER" 2>/dev/null; then echo "run.sh: server exited during start-up" >&2; exit 1; fi
  sleep 0.5
done
curl -fsS -o /dev/null --max-time 2 "$BASE/healthz" || { echo "run.sh: $BASE/healthz not 200 after 60 s" >&2; exit 1; }

node tests/browser/demo_test.mjs "$BASE"
