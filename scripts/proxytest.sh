#!/usr/bin/env bash
# The modules of this repository as a stranger gets them: from a module proxy,
# by path and version, with no go.work and no replace.
#
#   bash scripts/proxytest.sh
#
# 1. Builds a throwaway file:// module proxy from this git repository with the
#    go command itself in direct mode (scripts/lib/modules.sh, build_proxy): the
#    root and every sub-module at each version that a sub-module pins, and every
#    published sub-module at the pseudo-version of HEAD (committed work only).
#    The zips are the go command's own: nested modules left out, the root
#    LICENSE added to a sub-module that has none.
# 2. In a fresh temporary module with an empty temporary module cache,
#    `go get`s the root at the pinned version and each published sub-module at
#    HEAD, then builds and runs a program that imports apiguard,
#    apiguard/client, apiguard/apiguardtest and redisstore.
# 3. Checks every module of the repository without go.work, against the same
#    proxy: go.mod and go.sum tidy (go mod tidy -diff), go build and go vet with
#    -mod=readonly, so the committed go.sum files are complete.
#
# Environment of steps 2 and 3 (what anyone needs until our modules are on a
# public proxy):
#   GOWORK=off GOFLAGS=-mod=mod (step 3: -mod=readonly)
#   GOPROXY=file://<throwaway proxy>,file://<machine module cache>/cache/download,<configured proxies, less direct>
#   GONOSUMDB=github.com/apiguard/apiguard  (our pseudo-versions are in no
#     checksum database; third-party modules are still checked against it)
#   GOMODCACHE=<empty temporary directory>
# and, in the new module of step 2, a go.sum seeded with the third-party lines
# of the published modules' go.sum files, so that no checksum database lookup
# is needed (a user's first `go get` would look them up instead).
# The machine's module cache, served as a file:// proxy, makes third-party
# modules offline and fast once cached; what it lacks comes from the next
# proxy. GOFLAGS also has -trimpath, so the build cache is reused across
# temporary module caches, and -buildvcs=false (no VCS stamp, no git needed
# in the build).
#
# Published modules: every module in go.work but the root and those listed in
# UNPUBLISHED. examples/ is not published: it is documentation that runs (one
# API wired into chi, gin, echo and ServeMux, and its tests), not an API to
# depend on, and it would bring gin, echo and chi into a user's module graph.
# bench/ is not published either: it compares apiguard with peer libraries
# (scripts/bench.sh), and would bring all of them into a user's module graph.
# Step 3 still builds both without go.work against the pinned root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/modules.sh

UNPUBLISHED=${UNPUBLISHED:-examples bench}

t0=$SECONDS
fail() { echo "proxytest: FAIL: $*" >&2; exit 1; }
say() { echo "proxytest: $* ($((SECONDS - t0))s)"; }

root=$(root_module_path)
head=$(git rev-parse --verify HEAD)
headv=$(pseudo_version HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "proxytest: note: uncommitted changes are not tested; the proxy serves HEAD ($headv)"
fi

published=()
for dir in $(work_modules); do
  [ "$dir" != . ] || continue
  case " $UNPUBLISHED " in *" $dir "*) continue ;; esac
  published+=("$dir")
done

# What the proxy serves: every pinned version of our modules, every published
# sub-module at HEAD.
specs=()
pins=$(repo_pins)
[ -n "$pins" ] || fail "no sub-module requires $root"
while read -r p v; do
  sha=$(commit_of_version "$v") || fail "$p $v"
  git merge-base --is-ancestor "$sha" HEAD || fail "$p $v: commit $sha is not in the history of HEAD"
  specs+=("$(module_dir "$p")@$sha")
done <<<"$pins"
rootpins=$(awk -v r="$root" '$1 == r {print $2}' <<<"$pins")
[ "$(wc -l <<<"$rootpins")" = 1 ] || fail "the sub-modules pin different versions of $root: $(echo $rootpins); run scripts/pin.sh"
rootv=$rootpins
for dir in "${published[@]}"; do specs+=("$dir@$head"); done

tmp=$(mktemp -d)
trap 'rmtree "$tmp"' EXIT

# 0. Every third-party module whose zip our go.sum files name, in the machine's
# module cache (a no-op once there), so that steps 2 and 3 find them offline:
# go mod tidy also loads the tests of dependencies, whose modules `go test`
# never downloads.
thirdparty=$(for dir in $(work_modules); do cat "$(dirname "$(gomod_file "$dir")")/go.sum"; done |
  awk -v r="$root" '$2 !~ /\/go\.mod$/ && $1 != r && index($1, r "/") != 1 {print $1 "@" $2}' | sort -u)
(cd "$tmp" && env GOWORK=off GOFLAGS=-mod=mod go mod download $thirdparty) || fail "go mod download (third-party modules)"

# 1. The throwaway proxy.
build_proxy "$tmp/proxy" "${specs[@]}" | sed 's/^/proxytest: served /' || fail "building the module proxy"
say "proxy built in $tmp/proxy"

nowork=(env GOWORK=off GOFLAGS="-mod=mod -trimpath -buildvcs=false" GOMODCACHE="$tmp/modcache"
  GOPROXY="file://$tmp/proxy,$(third_party_proxies)" GOPRIVATE= GONOPROXY= GONOSUMDB="$root"
  GOTOOLCHAIN=local)
# quiet CMD...: run CMD without the go command's "downloading" lines; its
# status is CMD's (pipefail).
quiet() { "$@" 2>&1 | sed '/^go: downloading /d'; }

# 2. A stranger's module.
c=$tmp/consumer
mkdir "$c"
gets=("$root@$rootv")
for dir in "${published[@]}"; do gets+=("$root/$dir@$headv"); done
quiet "${nowork[@]}" go -C "$c" mod init example.com/consumer || fail "go mod init"
# Third-party checksums: those our published modules' go.sum files hold (each
# checked against the checksum database when it was added), so that the test
# runs offline once the modules are cached. A checksum the consumer needs
# beyond them is still looked up in the checksum database; ours are in none
# (GONOSUMDB), and the go command computes them from the proxy's zips.
for dir in . "${published[@]}"; do cat "$dir/go.sum"; done | awk -v r="$root" '$1 != r && index($1, r "/") != 1' | sort -u >"$c/go.sum"
quiet "${nowork[@]}" go -C "$c" get "${gets[@]}" || fail "go get ${gets[*]}"
cat >"$tmp/consumer/main.go" <<'EOF'
// A program that depends on apiguard as its users do.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/apiguard/apiguard"
	"github.com/apiguard/apiguard/apiguardtest"
	"github.com/apiguard/apiguard/client"
	"github.com/apiguard/apiguard/redisstore"
	"github.com/redis/go-redis/v9"
)

func main() {
	g := apiguard.MustNew(apiguard.Bearer(apiguardtest.NewKeyStore()), apiguard.WithDialect(apiguard.MockPay()))
	srv := httptest.NewServer(g.Authenticate()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := apiguard.ClientFrom(r.Context())
		fmt.Fprint(w, c.ID)
	})))
	defer srv.Close()

	s, err := client.Bearer(apiguardtest.KeyClientA)
	check(err)
	resp, err := (&http.Client{Transport: client.Transport(s, nil)}).Get(srv.URL)
	check(err)
	body, err := io.ReadAll(resp.Body)
	check(err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		check(fmt.Errorf("signed request: %s %q", resp.Status, body))
	}

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	_, err = redisstore.NewLimiter(rdb, []apiguard.Window{apiguard.PerMinute(10)})
	check(err)
	fmt.Printf("consumer: ok, authenticated as %s\n", body)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}
EOF
quiet "${nowork[@]}" go -C "$c" build -o consumer . || fail "the consumer does not build"
"$c/consumer" || fail "the consumer failed"
# The build list has our modules at the versions served, and nothing replaced.
! grep -q '^replace' "$c/go.mod" || fail "the consumer's go.mod has a replace"
for want in "${gets[@]}"; do
  got=$("${nowork[@]}" go -C "$c" list -m -f '{{.Path}}@{{.Version}}{{with .Replace}} => {{.Path}}{{end}}' "${want%@*}") ||
    fail "go list -m ${want%@*}"
  [ "$got" = "$want" ] || fail "the consumer's build list has $got, want $want"
done
# The root's zip leaves out every nested module, as the go command's does.
rootdir=$tmp/modcache/$root@$rootv
[ -f "$rootdir/go.mod" ] || fail "$root@$rootv is not in the consumer's module cache"
for dir in $(work_modules); do
  [ "$dir" = . ] || [ ! -e "$rootdir/$dir" ] || fail "$root@$rootv holds files of the nested module $dir"
done
for mod in "${gets[@]}"; do
  [ -f "$tmp/modcache/$mod/LICENSE" ] || echo "proxytest: note: $mod has no LICENSE"
done
say "go get ${gets[*]}: built and ran a program importing apiguard, client, apiguardtest, redisstore"

# 3. Every module of the repository without go.work, against the proxy.
readonly_env=("${nowork[@]}" GOFLAGS="-mod=readonly -trimpath -buildvcs=false")
for dir in $(work_modules); do
  quiet "${readonly_env[@]}" go -C "$dir" mod tidy -diff || fail "$dir without go.work: go.mod/go.sum are not tidy (the diff above)"
  quiet "${readonly_env[@]}" go -C "$dir" build -o /dev/null ./... || fail "$dir without go.work does not build against the pinned versions (scripts/pin.sh)"
  quiet "${readonly_env[@]}" go -C "$dir" vet ./... || fail "$dir without go.work: go vet failed"
  say "$dir without go.work: tidy, builds, vets"
done
say "ok"
