#!/usr/bin/env bash
# Runs every check and test of every module: gofmt, go vet, go test -race.
# Installs what the tests need (redis-server for redisstore) when it is
# missing. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# redisstore's tests start their own redis-server on a free loopback port;
# they need the binary.
if [ -f redisstore/go.mod ] && ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

status=0
for mod in $(find . -name go.mod -not -path './.git/*' | sort); do
  dir=$(dirname "$mod")
  echo "== $dir"
  (cd "$dir" && go vet ./... && go test -race -count=1 ./...) || status=1
done
exit $status
