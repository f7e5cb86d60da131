#!/usr/bin/env bash
# Pins every sub-module's requirement on the root module, and on each other, to
# the pseudo-version of one commit of this repository (default: HEAD), drops
# any replace directive between the repository's modules, and brings each
# sub-module's go.mod and go.sum up to date for a build without go.work.
#
#   bash scripts/pin.sh [REV]
#   git commit -am "Pin sub-modules to <version>"
#
# Run it after a change of the root module that a sub-module needs, once that
# change is committed. The commit must stay in the history that lands (merge
# it, do not squash or rebase it away): scripts/proxytest.sh fails when the
# pinned commit is gone.
#
# With go.work (local development, CI's tests) the pins do not matter: every
# module of the repository is used from the work tree. Without it (GOWORK=off,
# and for anyone who `go get`s a sub-module) the root is fetched at the pinned
# version. Until this repository is on a public module proxy, such a build
# needs a proxy that serves our modules; pin.sh and proxytest.sh make one from
# this git repository (see scripts/lib/modules.sh). The environment that
# works against it:
#   GOWORK=off GOFLAGS=-mod=mod GOPROXY=file://<proxy>,<the usual proxy>
#   GONOSUMDB=github.com/apiguard/apiguard   (our pseudo-versions are in no
#                                             checksum database; everything
#                                             else is still checked)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/modules.sh

rev=${1:-HEAD}
sha=$(git rev-parse --verify --quiet "$rev^{commit}") || { echo "pin.sh: no commit $rev" >&2; exit 1; }
if ! git merge-base --is-ancestor "$sha" HEAD; then
  echo "pin.sh: $sha is not in the history of HEAD; pin to a commit of this branch" >&2
  exit 1
fi
version=$(pseudo_version "$sha")
root=$(root_module_path)

tmp=$(mktemp -d)
trap 'rmtree "$tmp"' EXIT

# Every module of the repository that exists at the commit, served as the go
# command would serve it.
specs=()
for dir in $(work_modules); do
  if git cat-file -e "$sha:$(gomod_file "$dir")" 2>/dev/null; then specs+=("$dir@$sha"); fi
done
echo "pin.sh: serving ${specs[*]%@*} at $version"
build_proxy "$tmp/proxy" "${specs[@]}" >/dev/null

paths=()
for dir in $(work_modules); do
  if [ "$dir" = . ]; then paths+=("$root"); else paths+=("$root/$dir"); fi
done

# Builds without go.work, against that proxy for our modules and the usual
# proxies (after the machine's module cache) for the rest, in a temporary
# module cache. -trimpath: build cache entries that do not depend on where
# that module cache is, so that the next run reuses them.
nowork=(env GOWORK=off GOFLAGS="-mod=mod -trimpath -buildvcs=false" GOMODCACHE="$tmp/modcache"
  GOPROXY="file://$tmp/proxy,$(third_party_proxies)" GOPRIVATE= GONOPROXY= GONOSUMDB="$root")

for dir in $(work_modules); do
  [ "$dir" != . ] || continue
  self=$root/$dir
  for p in "${paths[@]}"; do
    [ "$p" != "$self" ] || continue
    go mod edit -dropreplace="$p" "$dir/go.mod"
    if module_requires "$dir/go.mod" | grep -q "^$p "; then
      if ! git cat-file -e "$sha:$(gomod_file "$(module_dir "$p")")" 2>/dev/null; then
        echo "pin.sh: $dir requires $p, which has no go.mod at $sha" >&2
        exit 1
      fi
      go mod edit -require="$p@$version" "$dir/go.mod"
      echo "pin.sh: $dir requires $p $version"
    fi
  done
  (cd "$dir" && "${nowork[@]}" go mod tidy)
  # The pinned root must have what the sub-module uses: build and vet it
  # (tests included) against the pinned versions alone.
  if ! (cd "$dir" && "${nowork[@]}" go build -o /dev/null ./... && "${nowork[@]}" go vet ./...); then
    echo "pin.sh: $dir does not build against $version; pin a later commit" >&2
    exit 1
  fi
done

# go.work: in workspace mode the go command still reads the go.mod of each
# pinned version of our modules, which no public proxy serves; replace each
# such version by its directory (local development only: go.work never
# reaches anyone who depends on our modules).
while read -r p v _; do
  case $p in "$root" | "$root"/*) go work edit -dropreplace="$p@$v" ;; esac
done < <(work_replaces)
while read -r p v; do
  go work edit -replace="$p@$v=./$(module_dir "$p" | sed 's|^\.$||')"
done < <(repo_pins)
check_work_replaces

# go.work.sum: what the workspace needs beyond the modules' go.sum files.
for dir in $(work_modules); do (cd "$dir" && go list -deps -test ./... >/dev/null); done

git status --short -- go.work go.work.sum $(for d in $(work_modules); do [ "$d" = . ] || echo "$d/go.mod $d/go.sum"; done)
echo "pin.sh: pinned to $root@$version"
