#!/usr/bin/env bash
# The load and soak run of SECURITY.md: builds the demo gateway, starts it on
# free loopback ports, drives every API of it with valid and hostile requests
# for DURATION (cmd/apiguard-demo/soak), prints the report (requests, statuses
# and latency percentiles per kind; goroutines and heap of the demo before,
# right after and settled), and stops it. Exits 1 on an unexpected status or
# on goroutine or heap growth, 2 if the run could not be made.
#
#   bash scripts/soak.sh [soak flags...]     e.g. -rate 400 -workers 16
#
# DURATION  how long the load lasts (default 60s)
# OUT       also write the report to this file
#
# The demo's 88Pay tokens live 5 minutes here (-token-ttl 5m), so that a soak
# of an hour or more stays under 88Pay's 100 tokens an hour per merchant.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/apiguard-demo" ./cmd/apiguard-demo
go build -o "$tmp/soak" ./cmd/apiguard-demo/soak
status=0
"$tmp/soak" -spawn "$tmp/apiguard-demo" -duration "${DURATION:-60s}" "$@" -- -token-ttl 5m | tee "$tmp/report" || status=$?
[ -z "${OUT:-}" ] || cp "$tmp/report" "$OUT"
exit "$status"
