# Helpers for the repository's Go modules, sourced (not run) by scripts/pin.sh,
# scripts/proxytest.sh and scripts/test.sh, from the repository root, under
# `set -euo pipefail`.
#
# How a module of this repository is published: the go command (and so the
# public module proxy) fetches github.com/apiguard/apiguard[/<dir>] from the git
# repository in "direct" mode and makes the module zip itself (the module's
# directory at a commit, less every nested module, plus the root LICENSE when
# the directory has none). build_proxy does exactly that, with the go command
# itself: GOPROXY=direct, and git told (url.<here>.insteadOf) that the
# repository's address is this local repository. No network is used for it, and
# the zips, go.mod files and pseudo-versions are the go command's own.

# rmtree DIR: remove a directory that may hold a module cache (read-only files).
rmtree() {
  [ -n "$1" ] && [ -e "$1" ] || return 0
  chmod -R u+w "$1" 2>/dev/null || true
  rm -rf "$1"
}

# The module path of the repository root, e.g. github.com/apiguard/apiguard.
root_module_path() {
  module_path_of go.mod
}

# module_path_of FILE: the module path declared by a go.mod file.
module_path_of() {
  go mod edit -json "$1" | awk '/^\t"Module": \{/ {m = 1} m && /"Path"/ {gsub(/[",]/, "", $2); print $2; exit}'
}

# module_requires FILE: "path version" for every requirement of a go.mod file.
module_requires() {
  go mod edit -json "$1" | awk '
    /^\t"Require": \[/ {r = 1; next}
    r && /^\t\]/ {r = 0}
    r && /"Path"/ {gsub(/[",]/, "", $2); p = $2}
    r && /"Version"/ {gsub(/[",]/, "", $2); print p, $2}'
}

# work_modules: the module directories that go.work uses, relative to the root
# ("." for the root itself), sorted.
work_modules() {
  go work edit -json go.work | sed -n 's/^[[:space:]]*"DiskPath": "\(.*\)"[,]\{0,1\}$/\1/p' |
    sed 's|^\./||; s|/$||; s|^$|.|' | sort -u
}

# work_replaces: "path version newpath" for each version-specific replace in
# go.work.
work_replaces() {
  go work edit -json go.work | awk '
    /^\t"Replace": \[/ {r = 1; next}
    r && /^\t\]/ {r = 0}
    r && /"Old"/ {o = 1; v = ""}
    r && /"New"/ {o = 0}
    r && o && /"Path"/ {gsub(/[",]/, "", $2); p = $2}
    r && o && /"Version"/ {gsub(/[",]/, "", $2); v = $2}
    r && !o && /"Path"/ {gsub(/[",]/, "", $2); if (v != "") print p, v, $2}'
}

# repo_pins: "path version" for each requirement of a sub-module on a module
# of this repository (the root or another sub-module), sorted, once each.
repo_pins() {
  local root dir
  root=$(root_module_path)
  for dir in $(work_modules); do
    [ "$dir" != . ] || continue
    module_requires "$dir/go.mod" | awk -v r="$root" '$1 == r || index($1, r "/") == 1'
  done | sort -u
}

# check_work_replaces: fail unless go.work replaces every pinned version of a
# module of this repository by its directory, and nothing else of ours. In
# workspace mode the go command still reads the go.mod of every version in
# the module graph, our pinned versions included; no public proxy has those,
# so go.work points them at the work tree (scripts/pin.sh writes these lines).
check_work_replaces() {
  local root want have
  root=$(root_module_path)
  want=$(repo_pins | while read -r p v; do echo "$p $v $(module_dir "$p")"; done | sort)
  have=$(work_replaces | awk -v r="$root" '$1 == r || index($1, r "/") == 1' |
    while read -r p v d; do d=${d#./}; d=${d%/}; echo "$p $v ${d:-.}"; done | sort)
  if [ "$want" != "$have" ]; then
    echo "go.work's replaces of our modules (path version dir):"; echo "${have:-  (none)}"
    echo "want one for each version the sub-modules pin:"; echo "${want:-  (none)}"
    echo "run: bash scripts/pin.sh <the pinned commit>"
    return 1
  fi
}

# disk_modules: every directory holding a go.mod, relative to the root ("." for
# the root), skipping what the go command skips in ./... (names starting with
# "." or "_", testdata) and vendor/.
disk_modules() {
  find . -mindepth 1 \( -name '.*' -o -name '_*' -o -name testdata -o -name vendor \) -prune \
    -o -name go.mod -type f -print | sed 's|^\./||; s|/\{0,1\}go\.mod$||; s|^$|.|' | sort -u
}

# gomod_file DIR: the go.mod file of a module directory ("." for the root).
gomod_file() {
  if [ "$1" = . ]; then echo go.mod; else echo "$1/go.mod"; fi
}

# module_dir PATH: the directory (relative to the root) of one of the
# repository's module paths.
module_dir() {
  local root
  root=$(root_module_path)
  case $1 in
    "$root") echo . ;;
    "$root"/*) echo "${1#"$root"/}" ;;
    *) echo "module_dir: $1 is not a module of $root" >&2; return 1 ;;
  esac
}

# pseudo_version REV: the go command's pseudo-version of a commit, for a
# repository without semver tags: v0.0.0-<committer time, UTC,
# yyyymmddhhmmss>-<12-hex commit prefix>. (build_proxy checks that the go
# command computes the same string.)
pseudo_version() {
  local sha ts
  sha=$(git rev-parse --verify --quiet "$1^{commit}") || { echo "pseudo_version: no commit $1" >&2; return 1; }
  ts=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y%m%d%H%M%S "$sha")
  echo "v0.0.0-$ts-${sha:0:12}"
}

# commit_of_version VERSION: the full hash of the commit a pseudo-version names,
# failing when this repository does not have it or the timestamp does not match.
commit_of_version() {
  local v=$1 prefix sha
  prefix=${v##*-}
  if ! [[ $v =~ ^v[0-9]+\.[0-9]+\.[0-9]+-.*[0-9]{14}-[0-9a-f]{12}$ ]]; then
    echo "commit_of_version: $v is not a pseudo-version" >&2; return 1
  fi
  sha=$(git rev-parse --verify --quiet "$prefix^{commit}") || {
    echo "commit_of_version: commit $prefix of $v is not in this repository (history rewritten, squashed, or a shallow clone?); re-run scripts/pin.sh" >&2
    return 1
  }
  if [ "$(pseudo_version "$sha")" != "$v" ]; then
    echo "commit_of_version: $v names commit $sha, whose pseudo-version is $(pseudo_version "$sha")" >&2
    return 1
  fi
  echo "$sha"
}

# third_party_proxies: the GOPROXY list for modules that are not ours: the
# machine's module cache first (offline and fast; the go command serves its
# cache/download directory as a file:// proxy, and falls through to the next
# entry for what it lacks), then the configured proxies without "direct" or
# "off".
third_party_proxies() {
  local list="file://$(go env GOMODCACHE)/cache/download" p
  for p in $(go env GOPROXY | tr ',|' '  '); do
    case $p in direct | off) ;; *) list="$list,$p" ;; esac
  done
  case $list in *,*) ;; *) list="$list,https://proxy.golang.org" ;; esac
  echo "$list"
}

# build_proxy OUTDIR DIR@REV...: a file:// module proxy in OUTDIR serving the
# module in directory DIR (relative to the root) at commit REV, for each
# argument, made by the go command in direct mode from this git repository.
# Prints "path version" for each module served.
build_proxy() {
  local out=$1 root gitdir tmp spec dir rev sha path want args=() served=()
  shift
  root=$(root_module_path)
  gitdir=$(git rev-parse --path-format=absolute --git-common-dir)
  tmp=$(mktemp -d)
  for spec; do
    dir=${spec%@*} rev=${spec##*@}
    sha=$(git rev-parse --verify --quiet "$rev^{commit}") || { echo "build_proxy: no commit $rev" >&2; rmtree "$tmp"; return 1; }
    local gomod
    gomod=$(gomod_file "$dir")
    if ! git cat-file -e "$sha:$gomod" 2>/dev/null; then
      echo "build_proxy: no $gomod at commit $sha" >&2; rmtree "$tmp"; return 1
    fi
    path=$root
    [ "$dir" = . ] || path=$root/$dir
    args+=("$path@$sha")
    served+=("$path $(pseudo_version "$sha")")
  done
  if ! (cd "$tmp" && env GOMODCACHE="$tmp/modcache" GOPROXY=direct GOWORK=off GOFLAGS=-mod=mod \
    GOPRIVATE= GONOPROXY= GONOSUMDB="$root" GOVCS="$root:git" \
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="url.file://$gitdir.insteadOf" GIT_CONFIG_VALUE_0="https://$root" \
    go mod download -json "${args[@]}" >"$tmp/download.json"); then
    cat "$tmp/download.json" >&2
    echo "build_proxy: go mod download (direct, from $gitdir) failed" >&2
    rmtree "$tmp"; return 1
  fi
  local line v f
  for line in "${served[@]}"; do
    path=${line% *} v=${line#* }
    local from=$tmp/modcache/cache/download/$path/@v
    if [ ! -f "$from/$v.zip" ]; then
      cat "$tmp/download.json" >&2
      echo "build_proxy: the go command did not make $path@$v (another pseudo-version? semver tags change the form)" >&2
      rmtree "$tmp"; return 1
    fi
    mkdir -p "$out/$path/@v"
    for f in info mod zip; do cp "$from/$v.$f" "$out/$path/@v/$v.$f"; done
    { [ -f "$out/$path/@v/list" ] && cat "$out/$path/@v/list"; echo "$v"; } | sort -u >"$tmp/list"
    mv "$tmp/list" "$out/$path/@v/list"
    echo "$path $v"
  done
  rmtree "$tmp"
}
