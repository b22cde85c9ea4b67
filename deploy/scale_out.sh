#!/usr/bin/env bash
# Scale-out check: two framewire instances behind nginx (deploy/nginx.conf), on loopback.
#
#   deploy/scale_out.sh                  # from the repo root (models/ and tests/fixtures/ are used)
#   FRAMEWIRE_BIN=/path/to/framewire deploy/scale_out.sh
#
# Starts two `framewire serve --threads 1` instances on free loopback ports and waits until
# each answers GET /healthz with 200; generates an nginx config from deploy/nginx.conf with
# those ports and runs nginx in the foreground (prefix, pid, logs and temp files in a temp
# dir); opens 6 sessions through nginx with `framewire bench open` and, while they run, asks
# each instance's GET /sessions directly: both must hold at least one session, 6 together,
# all with the pipeline asked for in the query string. Then the bench must exit 0 (every frame
# accounted for) and both instances must be back to 0 sessions. Installs nginx with apt-get
# if it is missing (sudo when not root). Exits non-zero with a message on any failure; all
# processes it started are stopped on exit. KEEP_TMP=1 keeps the temp dir (logs, config).
set -euo pipefail

SESSIONS=6
FPS=2
BENCH_SECONDS=8
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-120} # seconds for an instance to load its models

say() { echo "scale_out: $*"; }
die() {
    echo "scale_out: FAIL: $*" >&2
    exit 1
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${FRAMEWIRE_BIN:-target/release/framewire}
# A relative FRAMEWIRE_BIN is taken from the caller's directory if it is there, else from the root.
if [[ $BIN != /* ]]; then
    if [[ -e $BIN ]]; then BIN="$PWD/$BIN"; else BIN="$ROOT/$BIN"; fi
fi
cd "$ROOT"
[[ -x $BIN ]] || die "no framewire binary at $BIN (cargo build --release, or set FRAMEWIRE_BIN)"
[[ -f deploy/nginx.conf ]] || die "deploy/nginx.conf is missing"
[[ -d tests/fixtures/seq ]] || die "tests/fixtures/seq is missing (run from a framewire checkout)"
command -v curl >/dev/null || die "curl is needed"

# --- nginx ---------------------------------------------------------------------------------
find_nginx() {
    if command -v nginx 2>/dev/null; then return 0; fi
    if [[ -x /usr/sbin/nginx ]]; then echo /usr/sbin/nginx; return 0; fi
    return 1
}
NGINX=${NGINX_BIN:-$(find_nginx || true)}
if [[ -z $NGINX ]]; then
    command -v apt-get >/dev/null || die "nginx is not installed and apt-get is not available"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "nginx is not installed; need root or sudo to apt-get install it"
        SUDO=(sudo)
    fi
    say "nginx not found: installing it (apt-get install -y nginx)"
    apt_install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null; }
    apt_install || { "${SUDO[@]}" apt-get update -q >/dev/null && apt_install; } ||
        die "apt-get install nginx failed"
    NGINX=$(find_nginx) || die "nginx still not found after apt-get install"
fi

# --- processes and cleanup -----------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/framewire-scale-out.XXXXXX")
INSTANCE_PIDS=()
NGINX_PID=
BENCH_PID=

stop() { # pid: SIGTERM, up to 10 s to exit (framewire drains for --shutdown-grace), then SIGKILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid f
    trap - EXIT
    for pid in "$BENCH_PID" "$NGINX_PID" "${INSTANCE_PIDS[@]}"; do
        [[ -n $pid ]] && stop "$pid"
    done
    if [[ $rc -eq 130 || $rc -eq 143 ]]; then
        echo "scale_out: interrupted" >&2
    elif [[ $rc -ne 0 ]]; then
        for f in "$TMP"/a.log "$TMP"/b.log "$TMP"/nginx.out "$TMP"/error.log "$TMP"/bench.out "$TMP"/bench.err; do
            [[ -s $f ]] || continue
            echo "----- last lines of $f" >&2
            tr '\r' '\n' <"$f" | tail -n 15 >&2 # (the bench's progress line uses \r)
        done
    fi
    if [[ $rc -ne 0 || ${KEEP_TMP:-0} == 1 ]]; then
        echo "scale_out: logs and config kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A loopback port nobody answers on, below the usual ephemeral range (32768-60999) so that
# outgoing connections cannot take it in the meantime, and not one already handed out.
TAKEN=" "
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ $TAKEN == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            TAKEN+="$p "
            echo "$p"
            return 0
        fi
    done
    return 1
}
# (Called in the main shell, not in $(...), so that TAKEN keeps the ports handed out.)
free_port >"$TMP/port" || die "no free loopback port found"; PORT_A=$(<"$TMP/port")
free_port >"$TMP/port" || die "no free loopback port found"; PORT_B=$(<"$TMP/port")
free_port >"$TMP/port" || die "no free loopback port found"; PORT_LB=$(<"$TMP/port")

# --- two framewire instances ---------------------------------------------------------------
say "starting framewire instances on 127.0.0.1:$PORT_A (a) and 127.0.0.1:$PORT_B (b), --threads 1"
"$BIN" serve --listen "127.0.0.1:$PORT_A" --threads 1 >"$TMP/a.log" 2>&1 &
INSTANCE_PIDS+=("$!")
"$BIN" serve --listen "127.0.0.1:$PORT_B" --threads 1 >"$TMP/b.log" 2>&1 &
INSTANCE_PIDS+=("$!")

wait_healthy() { # name port pid
    local name=$1 port=$2 pid=$3 deadline=$((SECONDS + STARTUP_TIMEOUT))
    until curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "instance $name (port $port) exited during start-up (log: $TMP/$name.log)"
        ((SECONDS < deadline)) || die "instance $name (port $port): GET /healthz not 200 after ${STARTUP_TIMEOUT} s"
        sleep 0.2
    done
}
t0=$SECONDS
wait_healthy a "$PORT_A" "${INSTANCE_PIDS[0]}"
wait_healthy b "$PORT_B" "${INSTANCE_PIDS[1]}"
say "both instances answer GET /healthz 200 (start-up $((SECONDS - t0)) s)"

# --- nginx in front ------------------------------------------------------------------------
# Only the tagged lines change; everything else is deploy/nginx.conf as shipped.
sed -e "s|^\([[:space:]]*\)listen .*\(# @listen\)\$|\1listen 127.0.0.1:$PORT_LB;  \2|" \
    -e "s|^\([[:space:]]*\)server [^[:space:]]*\(.*# @backend-a\)\$|\1server 127.0.0.1:$PORT_A\2|" \
    -e "s|^\([[:space:]]*\)server [^[:space:]]*\(.*# @backend-b\)\$|\1server 127.0.0.1:$PORT_B\2|" \
    deploy/nginx.conf >"$TMP/nginx.conf"
for want in "listen 127.0.0.1:$PORT_LB;" "server 127.0.0.1:$PORT_A " "server 127.0.0.1:$PORT_B "; do
    grep -qF "$want" "$TMP/nginx.conf" ||
        die "could not set '$want' in the nginx config (tags # @listen, # @backend-a/-b in deploy/nginx.conf?)"
done
chmod 755 "$TMP" # nginx workers may run as another user (www-data)
NGINX_ARGS=(-p "$TMP/" -c "$TMP/nginx.conf")
# -e (nginx >= 1.19.5): the error log used before the config is read; keeps nginx away from
# /var/log/nginx entirely.
if "$NGINX" -h 2>&1 | grep -q -- '-e filename'; then NGINX_ARGS+=(-e "$TMP/error.log"); fi
"$NGINX" -t -q "${NGINX_ARGS[@]}" -g 'daemon off;' >"$TMP/nginx.out" 2>&1 ||
    die "nginx rejects the generated config: $(cat "$TMP/nginx.out")"
"$NGINX" "${NGINX_ARGS[@]}" -g 'daemon off;' >>"$TMP/nginx.out" 2>&1 &
NGINX_PID=$!
deadline=$((SECONDS + 15))
until curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$PORT_LB/healthz" 2>/dev/null; do
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited (port $PORT_LB taken?)"
    ((SECONDS < deadline)) || die "GET /healthz through nginx (port $PORT_LB) not 200 after 15 s"
    sleep 0.2
done
say "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||') on 127.0.0.1:$PORT_LB proxies to both (GET /healthz through it: 200)"

# --- sessions through nginx ----------------------------------------------------------------
URL="ws://127.0.0.1:$PORT_LB/ws/video/stream"
say "bench open: $SESSIONS sessions x $FPS fps x $BENCH_SECONDS s, pipeline detect, via $URL"
"$BIN" bench open --url "$URL" --sessions "$SESSIONS" --fps "$FPS" --seconds "$BENCH_SECONDS" \
    --frames tests/fixtures/seq --pipeline detect >"$TMP/bench.out" 2>"$TMP/bench.err" &
BENCH_PID=$!

# Count a pattern in an instance's GET /sessions (JSON array of live sessions).
count() { # port extended-regex
    local body
    body=$(curl -fsS -m 2 "http://127.0.0.1:$1/sessions") || die "GET /sessions on port $1 failed"
    printf '%s' "$body" | { grep -Eo "$2" || true; } | wc -l
}
n_a=0 n_b=0
deadline=$((SECONDS + BENCH_SECONDS))
while :; do
    n_a=$(count "$PORT_A" '"session_id"')
    n_b=$(count "$PORT_B" '"session_id"')
    ((n_a + n_b >= SESSIONS)) && break
    kill -0 "$BENCH_PID" 2>/dev/null || die "the bench ended before all $SESSIONS sessions were seen (a=$n_a b=$n_b)"
    ((SECONDS < deadline)) || die "only $((n_a + n_b)) of $SESSIONS sessions live on the instances (a=$n_a b=$n_b)"
    sleep 0.25
done
d_a=$(count "$PORT_A" '"pipeline": *"detect"')
d_b=$(count "$PORT_B" '"pipeline": *"detect"')
say "live sessions while the bench runs: instance a $n_a, instance b $n_b (pipeline=detect: $d_a + $d_b)"
((n_a + n_b == SESSIONS)) || die "$((n_a + n_b)) sessions on the instances, expected $SESSIONS"
((n_a >= 1 && n_b >= 1)) || die "sessions not spread: instance a $n_a, instance b $n_b"
((d_a + d_b == SESSIONS)) ||
    die "the query string did not reach framewire: $((d_a + d_b)) of $SESSIONS sessions run pipeline detect"

bench_rc=0
wait "$BENCH_PID" || bench_rc=$?
BENCH_PID=
((bench_rc == 0)) || die "framewire bench exited $bench_rc: $(tail -n 3 "$TMP/bench.err" "$TMP/bench.out")"

# Closing the client side must close the upstream side: both instances back to 0 sessions.
deadline=$((SECONDS + 10))
while :; do
    n_a_end=$(count "$PORT_A" '"session_id"')
    n_b_end=$(count "$PORT_B" '"session_id"')
    ((n_a_end + n_b_end == 0)) && break
    ((SECONDS < deadline)) || die "sessions still open 10 s after the bench ended (a=$n_a_end b=$n_b_end)"
    sleep 0.2
done
upgrades=$({ grep -c '"GET /ws/video/stream?pipeline=detect HTTP/1.1" 101 ' "$TMP/access.log" || true; })

say "----- summary"
say "instance a 127.0.0.1:$PORT_A: $n_a sessions; instance b 127.0.0.1:$PORT_B: $n_b sessions (via nginx least_conn)"
say "nginx access log: $upgrades WebSocket upgrades (101)"
grep -E '^(latency|sent=|per-session)' "$TMP/bench.out" | sed 's/^/scale_out: bench: /'
say "OK in $SECONDS s: $SESSIONS sessions spread over 2 instances, bench exit 0, all sessions closed"
