#!/usr/bin/env bash
# The fuzz campaign: runs every Fuzz target of every module for a set time,
# one after the other, and prints a line per target (package, target,
# executions, result). A target that finds a failing input leaves it under
# its package's testdata/fuzz/<target>/, where `go test` replays it from
# then on: commit it with the fix.
#
#   bash scripts/fuzz.sh [REGEXP]      targets whose name matches (default all)
#
# FUZZTIME   how long each target runs (default 10m; SECURITY.md's figures)
# OUT        also write the summary to this file
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/modules.sh

match=${1:-.}
fuzztime=${FUZZTIME:-10m}
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
failed=0 ran=0

for dir in $(work_modules); do
  # Each package of the module with Fuzz targets, and its targets.
  while read -r pkg; do
    [ -n "$pkg" ] || continue
    for target in $(go -C "$dir" test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' | grep -E -- "$match" || true); do
      ran=$((ran + 1))
      log=$(mktemp)
      start=$SECONDS
      if go -C "$dir" test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
        result=ok
      else
        result=FAIL failed=$((failed + 1))
        tail -n 30 "$log" >&2
      fi
      execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo 0)
      printf '%-60s %-28s %12s execs %5ss %s\n' "$pkg" "$target" "$execs" "$((SECONDS - start))" "$result" | tee -a "$summary"
      rm -f "$log"
    done
  done < <(go -C "$dir" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./... 2>/dev/null)
done

echo "fuzz: $ran targets, $failed failed, $fuzztime each"
[ -z "${OUT:-}" ] || cp "$summary" "$OUT"
[ "$failed" -eq 0 ]
