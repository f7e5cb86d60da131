#!/usr/bin/env bash
# Compares the root package's benchmarks at two commits in one run: both test
# binaries are built first, then run in turn, COUNT times each, so that both
# see the same machine. Prints benchstat's table (old = BASE, new = HEAD).
#
# Usage: bash scripts/bench-compare.sh BASE [HEAD] [BENCH-REGEXP]
#   BASE, HEAD  commits (HEAD: the working tree when omitted)
#   BENCH       default: the wrappers issue 11 promised not to slow down
# Environment: COUNT (default 8), BENCHTIME (default 300ms).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench-compare.sh BASE [HEAD] [BENCH]}
head=${2:-}
bench=${3:-'^(BenchmarkBearer|BenchmarkHashAuth|BenchmarkRateLimit)$'}
count=${COUNT:-8}
benchtime=${BENCHTIME:-300ms}

work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1 || true; git worktree remove --force "$work/new" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

build() { # build DIR OUT
  (cd "$1" && GOWORK=off go test -c -o "$2" . >/dev/null)
}
git worktree add -q --detach "$work/old" "$base"
build "$work/old" "$work/old.test"
if [ -n "$head" ]; then
  git worktree add -q --detach "$work/new" "$head"
  build "$work/new" "$work/new.test"
else
  build . "$work/new.test"
fi

for i in $(seq "$count"); do
  for v in old new; do
    "$work/$v.test" -test.run '^$' -test.bench "$bench" -test.benchmem \
      -test.benchtime "$benchtime" -test.count 1 >>"$work/$v.txt"
  done
done

(cd "$work" && go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da old=old.txt new=new.txt)
