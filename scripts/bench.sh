#!/usr/bin/env bash
# Runs the bench module's comparison of apiguard with peer libraries and
# floors, and writes bench/RESULTS.md (see bench/README.md).
#
#   bash scripts/bench.sh [all|go|loopback]
#
#   all       (default) the Go benchmarks and the loopback test, then
#             bench/RESULTS.md
#   go        the Go benchmarks only, then bench/RESULTS.md (without the
#             loopback section)
#   loopback  the loopback test only; prints its table
#
# The Go benchmarks: one test binary, built once, runs COUNT passes; each
# pass runs every category (BenchmarkBearer, BenchmarkRateLimit,
# BenchmarkHashAuth, BenchmarkSessionVerify) once, so that the machine's
# noise falls on every library alike. benchstat summarises the combined
# output; bench/cmd/benchreport writes the medians and ratios.
#
# The loopback test: bench/cmd/loopback serves bare routes (one writing the
# guarded response's rate-limit headers) and a guarded
# one (Bearer, then RateLimit by client with its headers) on 127.0.0.1, and
# wrk (the Debian package, installed when missing) loads each route in
# turn, LOOPBACK_ROUNDS rounds, alternating which goes first.
#
# Environment:
#   COUNT=6               passes of the Go benchmarks
#   BENCHTIME=            -benchtime of each benchmark (go test's default: 1s)
#   CATEGORIES="Bearer RateLimit HashAuth SessionVerify"
#   LOOPBACK_ROUNDS=3     rounds of the loopback test
#   LOOPBACK_DURATION=5s  wrk's -d for each route in each round
#   LOOPBACK_CONNS=32     wrk's -c
#   LOOPBACK_THREADS=1    wrk's -t
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
case $mode in all | go | loopback) ;; *) echo "usage: bash scripts/bench.sh [all|go|loopback]" >&2; exit 2 ;; esac
COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-}
CATEGORIES=${CATEGORIES:-Bearer RateLimit HashAuth SessionVerify}
LOOPBACK_ROUNDS=${LOOPBACK_ROUNDS:-3}
LOOPBACK_DURATION=${LOOPBACK_DURATION:-5s}
LOOPBACK_CONNS=${LOOPBACK_CONNS:-32}
LOOPBACK_THREADS=${LOOPBACK_THREADS:-1}
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

# The command as it was given, with the settings that differ from the
# defaults, for RESULTS.md.
command="bash scripts/bench.sh"
[ "$mode" = all ] || command="$command $mode"
for v in LOOPBACK_THREADS LOOPBACK_CONNS LOOPBACK_DURATION LOOPBACK_ROUNDS CATEGORIES BENCHTIME COUNT; do
  if [ -n "${!v}" ] && printenv "$v" >/dev/null; then command="$v=${!v} $command"; fi
done

tmp=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
t0=$SECONDS
say() { echo "bench: $* ($((SECONDS - t0))s)"; }

# The machine's load averages, for RESULTS.md: on a shared machine they
# say how far to trust the figures.
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }

go_benchmarks() {
  load_start=$(loadavg)
  say "building the test binary"
  go -C bench test -c -o "$tmp/bench.test" .
  local pass cat args=(-test.run '^$' -test.count 1)
  [ -z "$BENCHTIME" ] || args+=(-test.benchtime "$BENCHTIME")
  for pass in $(seq "$COUNT"); do
    for cat in $CATEGORIES; do
      say "pass $pass of $COUNT: Benchmark$cat"
      (cd bench && "$tmp/bench.test" "${args[@]}" -test.bench "^Benchmark$cat\$") >"$tmp/out.txt" || {
        cat "$tmp/out.txt"; echo "bench: Benchmark$cat failed" >&2; exit 1
      }
      cat "$tmp/out.txt" >>"$tmp/raw.txt"
    done
  done
  load_end=$(loadavg)
  say "benchstat"
  (cd "$tmp" && GOWORK=off GOFLAGS= go run "$BENCHSTAT" raw.txt >stat.txt)
}

wrk_install() {
  command -v wrk >/dev/null 2>&1 && return
  echo "bench: installing wrk (Debian package)"
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
}

# wrk_rps ROUTE: requests per second of one wrk run against ROUTE; fails
# if any response was not a 2xx.
wrk_rps() {
  local out
  out=$(wrk -t"$LOOPBACK_THREADS" -c"$LOOPBACK_CONNS" -d"$LOOPBACK_DURATION" -H "Authorization: Bearer $key" "http://$addr/$1")
  if grep -q 'Non-2xx' <<<"$out"; then echo "$out" >&2; echo "bench: /$1 answered errors" >&2; return 1; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

loopback() {
  wrk_install
  say "building bench/cmd/loopback"
  go -C bench build -o "$tmp/loopback" ./cmd/loopback
  key=sk_test_loopback0123456789abcdef
  "$tmp/loopback" -addr 127.0.0.1:0 -key "$key" >"$tmp/server.txt" &
  server=$!
  addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$tmp/server.txt")
    [ -z "$addr" ] || break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "bench: the loopback server did not start" >&2; exit 1; }
  say "loopback server on $addr; warming up"
  LOOPBACK_DURATION=2s wrk_rps bare >/dev/null
  LOOPBACK_DURATION=2s wrk_rps bare-headers >/dev/null
  LOOPBACK_DURATION=2s wrk_rps guarded >/dev/null
  : >"$tmp/rounds.txt"
  local round order route
  for round in $(seq "$LOOPBACK_ROUNDS"); do
    order="bare bare-headers guarded"
    [ $((round % 2)) = 1 ] || order="guarded bare-headers bare"
    for route in $order; do
      echo "$route $(wrk_rps "$route")" | tee -a "$tmp/rounds.txt"
    done
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=
}

loopback_how() {
  echo "One process serves three routes on 127.0.0.1 (bench/cmd/loopback): GET /bare, the handler alone; GET /bare-headers, the handler alone writing the three RateLimit-* headers a guarded response carries (fixed values of the same widths, so the same response size); and GET /guarded, the same handler behind Authenticate (Bearer, a MemoryKeyStore) and RateLimit by client (a MemoryLimiter, RateLimit-* headers on). \`wrk -t$LOOPBACK_THREADS -c$LOOPBACK_CONNS -d$LOOPBACK_DURATION\` ($(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')) loads each route in turn, $LOOPBACK_ROUNDS rounds, alternating the order, after a 2 s warm-up of each; every request carries the Bearer key. wrk and the server share the machine's cores, so wrk's parsing of the three headers' 70 bytes weighs on the guarded route against /bare: guarded / bare-headers is the guard's own cost."
}

case $mode in
  go | all) go_benchmarks ;;
esac
case $mode in
  loopback | all) loopback ;;
esac
if [ "$mode" = loopback ]; then
  go -C bench run ./cmd/benchreport -loopback "$tmp/rounds.txt"
  exit 0
fi

args=(-bench "$tmp/raw.txt" -benchstat "$tmp/stat.txt"
  -go "$(go version | sed 's/^go version //')" -cores "$(nproc)" -count "$COUNT"
  -date "$(date -u '+%Y-%m-%d %H:%M UTC')" -command "$command"
  -load "$load_start at the start of the Go benchmarks, $load_end at their end")
[ "$mode" != all ] || args+=(-loopback "$tmp/rounds.txt" -loopback-how "$(loopback_how)")
go -C bench run ./cmd/benchreport "${args[@]}" >"$tmp/RESULTS.md"
mv "$tmp/RESULTS.md" bench/RESULTS.md
say "wrote bench/RESULTS.md"
