#!/usr/bin/env bash
# Builds the test harness's Go programs (kube-apiserver, kube-controller-manager, kubelet,
# kube-scheduler, kubeharness, regharness, wanproxy) into a cache folder keyed by a hash of their inputs, and points .harness/bin at it.
# A cold build takes minutes on 2 cores; with a matching key it is skipped entirely, so fresh
# clones on the same machine (CI) reuse it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${IMAGE_CLONE_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-clone-harness}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

command -v go >/dev/null || { echo "build.sh: Go >= 1.26 is needed to build the test harness (go not found)" >&2; exit 1; }

k8s_version=v1.36.3
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean"
k8s_ldflags+=" -X k8s.io/component-base/version.gitCommit=module-build -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"

# The key covers everything that changes the binaries: module files, sources, Go version, flags.
module_key() {
  local dir="$1"; shift
  { go version; echo "$*"; cd "$dir" && find . -name '*.go' -o -name go.mod -o -name go.sum | LC_ALL=C sort | xargs sha256sum; } \
    | sha256sum | cut -c1-16
}

# progress NAME EXPECTED: while a build runs, says how long it has taken: a line every 30 s off a terminal,
# a line rewritten every second on one.
progress() {
  local name="$1" expected="$2" start=$SECONDS pause=""
  trap '[ -z "$pause" ] || kill "$pause" 2>/dev/null; [ -t 2 ] && printf "\r\033[K" >&2; exit 0' TERM
  while :; do
    if [ -t 2 ]; then sleep 1 & else sleep 30 & fi
    pause=$!
    wait "$pause"
    kill -0 $$ 2>/dev/null || exit 0 # build.sh is gone (interrupted): so is its progress
    local s=$((SECONDS - start))
    if [ -t 2 ]; then
      printf '\r\033[Kbuild.sh: building the %s harness: %dm%02ds (expected: %s)' "$name" $((s / 60)) $((s % 60)) "$expected" >&2
    else
      printf 'build.sh: building the %s harness: %dm%02ds so far (expected: %s)\n' "$name" $((s / 60)) $((s % 60)) "$expected" >&2
    fi
  done
}

# build NAME MODULE_DIR EXPECTED LDFLAGS PACKAGE... : builds into $cache/NAME-KEY unless it is already there.
# EXPECTED is how long it takes, as measured (docs/development.md), for the progress lines.
build() {
  local name="$1" dir="$root/$2" expected="$3" ldflags="$4"; shift 4
  local key out
  key="$(module_key "$dir" "$ldflags" "$@")"
  out="$cache/$name-$key"
  if [ -f "$out/.complete" ]; then
    echo "build.sh: $name harness up to date ($out)" >&2
  else
    echo "build.sh: building the $name harness into $out (expected: $expected)" >&2
    local start=$SECONDS
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    progress "$name" "$expected" &
    local ticker=$!
    local status=0
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" "$@") || status=$?
    kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
    if [ "$status" != 0 ]; then
      echo "build.sh: building the $name harness failed after $((SECONDS - start))s (go build's errors are above)" >&2
      exit "$status"
    fi
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "build.sh: built the $name harness in $((SECONDS - start))s" >&2
  fi
  ln -sf "$out"/* "$root/.harness/bin/"
}

mkdir -p "$cache" "$root/.harness/bin"
avail_kb=$(df -Pk "$cache" | awk 'NR==2 {print $4}')
if [ "${avail_kb:-0}" -lt 4000000 ]; then
  echo "build.sh: less than 4 GB free under $cache; the Go build needs about that much" >&2
fi
build kube test/harness/kube "about 9-14 min cold on 2 cores, 1-2 min with a warm Go cache" "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler ./cmd/kubeharness
build registry test/harness/registry "about 1-2 min cold" "-s -w" ./cmd/regharness
# Toxiproxy's server, for the benchmarks' WAN profile (bench/lib/wan.ts).
build wan test/harness/wan "under a minute cold" "-s -w" ./cmd/wanproxy
