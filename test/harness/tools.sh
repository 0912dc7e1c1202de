#!/usr/bin/env bash
# Builds the third-party tools some tests drive (helm, the Prometheus Pushgateway) with
# `go install MODULE@VERSION` from the Go module proxy, once, into a cache folder per tool and version,
# and links them into .harness/bin. A warm run does nothing; a cold helm build takes ~3 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${IMAGE_CLONE_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/image-clone-harness}"
export GOTOOLCHAIN=local CGO_ENABLED=0

command -v go >/dev/null || { echo "tools.sh: Go is needed to build helm and the Pushgateway (go not found)" >&2; exit 1; }

# tool NAME PACKAGE VERSION
tool() {
  local name="$1" pkg="$2" version="$3"
  local out="$cache/$name@$version"
  if [ -x "$out/$name" ]; then
    echo "tools.sh: $name $version up to date ($out)" >&2
  else
    echo "tools.sh: go install $pkg@$version into $out" >&2
    local start=$SECONDS
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    GOBIN="$out.tmp" nice -n 15 go install -trimpath -ldflags "-s -w" "$pkg@$version"
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "tools.sh: built $name $version in $((SECONDS - start))s" >&2
  fi
  ln -sf "$out/$name" "$root/.harness/bin/$name"
}

mkdir -p "$cache" "$root/.harness/bin"
tool helm helm.sh/helm/v4/cmd/helm v4.3.2
tool pushgateway github.com/prometheus/pushgateway v1.11.5
