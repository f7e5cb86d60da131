#!/usr/bin/env bash
# Runs every check and test of every module: gofmt, go.work against the
# modules on disk, go vet, go test -race, staticcheck, and the module proxy
# test (scripts/proxytest.sh). Installs what the checks need when it is
# missing: redis-server (Debian package) for redisstore's tests, staticcheck
# (from the module proxy, into .cache/bin). Prints a timing line per step and
# goes on after a failed step; exits 1 if any failed.
#
#   bash scripts/test.sh
#
# STATICCHECK_ROOT=report|fail     staticcheck findings in the root module:
#                                  report them only, or fail the run (default)
# STATICCHECK_MODULES=fail|report  the same for every other module (default fail)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/modules.sh

STATICCHECK_VERSION=v0.8.2
STATICCHECK_ROOT=${STATICCHECK_ROOT:-fail}
STATICCHECK_MODULES=${STATICCHECK_MODULES:-fail}
for v in STATICCHECK_ROOT STATICCHECK_MODULES; do
  case ${!v} in report | fail) ;; *) echo "$v=${!v}: want report or fail" >&2; exit 2 ;; esac
done

start=$SECONDS passed=0 failed=0 failures=()
# step NAME CMD...: runs CMD, then prints its time and result.
step() {
  local name=$1 t=$SECONDS
  shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "timing: $name: $((SECONDS - t))s ok"
  else
    failed=$((failed + 1)) failures+=("$name")
    echo "timing: $name: $((SECONDS - t))s FAILED"
  fi
}

# redisstore's tests start their own redis-server on a free loopback port;
# they need the binary.
redis_server() {
  if command -v redis-server >/dev/null 2>&1; then echo "redis-server: $(command -v redis-server)"; return; fi
  echo "installing redis-server (Debian package)"
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
}

gofmt_check() {
  local files unformatted
  files=$(git ls-files '*.go' 2>/dev/null) || files=$(find . -name '*.go' -not -path './.cache/*')
  unformatted=$(gofmt -l $files) || return 1
  if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; return 1; fi
}

# Every module on disk is in go.work, and go.work replaces the versions of our
# modules that the sub-modules pin (see scripts/pin.sh).
work_check() {
  local disk work
  disk=$(disk_modules) work=$(work_modules)
  echo "modules: $(echo $disk)"
  if [ "$disk" != "$work" ]; then
    echo "go.work uses: $(echo $work)"
    echo "go.mod files: $(echo $disk)"
    echo "add each module to go.work (go work use DIR), or remove it from there"
    return 1
  fi
  check_work_replaces
}

staticcheck_bin=$PWD/.cache/bin/staticcheck
staticcheck_install() {
  if [ -x "$staticcheck_bin" ] && "$staticcheck_bin" -version | grep -qF "(${STATICCHECK_VERSION#v})"; then
    echo "$("$staticcheck_bin" -version), in .cache/bin"
    return
  fi
  GOBIN=$PWD/.cache/bin GOWORK=off go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" &&
    "$staticcheck_bin" -version
}

# staticcheck_module DIR MODE: findings fail the step in MODE fail; in MODE
# report they are printed only. Anything else staticcheck prints (a package
# that does not load, a crash) fails it in both modes.
staticcheck_module() {
  local dir=$1 mode=$2 out rc=0 findings others
  [ -x "$staticcheck_bin" ] || { echo "staticcheck is not installed"; return 1; }
  out=$(cd "$dir" && "$staticcheck_bin" ./... 2>&1) || rc=$?
  [ -z "$out" ] || echo "$out"
  findings=$(grep -cE '^[^ ].*:[0-9]+:[0-9]+: .* \([A-Z]+[0-9]+\)$' <<<"$out" || true)
  others=$(grep -vcE '^[^ ].*:[0-9]+:[0-9]+: .* \([A-Z]+[0-9]+\)$|^$|^[[:space:]]' <<<"$out" || true)
  echo "staticcheck $dir: $findings findings (mode $mode), exit status $rc"
  if [ "$others" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; }; then return 1; fi
  [ "$findings" -eq 0 ] || [ "$mode" = report ]
}

step "redis-server" redis_server
step "gofmt" gofmt_check
step "go.work" work_check

modules=$(disk_modules)
for dir in $modules; do
  step "go vet $dir" go -C "$dir" vet ./...
  step "go test -race $dir" go -C "$dir" test -race -count=1 ./...
  # Every benchmark keeps compiling and runs once; its figures are not read.
  step "benchmarks once $dir" go -C "$dir" test -run '^$' -bench . -benchtime=1x ./...
done

step "staticcheck install" staticcheck_install
for dir in $modules; do
  mode=$STATICCHECK_MODULES
  [ "$dir" != . ] || mode=$STATICCHECK_ROOT
  step "staticcheck $dir" staticcheck_module "$dir" "$mode"
done

step "module proxy test" bash scripts/proxytest.sh

echo "timing: total: $((SECONDS - start))s"
[ "$failed" -eq 0 ] || echo "failed: ${failures[*]}"
echo "checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
