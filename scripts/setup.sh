# Sets up everything the demo and `npm test` need, on a Debian or Ubuntu machine, as root:
#   source scripts/setup.sh      # also puts the right Node first on PATH in this shell
#   bash scripts/setup.sh        # the same; then `source .ci/node.sh` in each new shell
# Steps: the Debian packages (.ci/debian-packages), Node >= 22.19 (.ci/node.sh), the npm packages (npm ci),
# the Go test harness (test/harness/build.sh), moto (the ECR tests' AWS emulator, from PyPI). Each says
# what it does and how long it took; each is quick when already done. What it cannot do here (not root,
# not Debian-family, no Go) it says first, in one line with the command to run instead, before anything
# slow. .ci/run runs this, then `npm test`.

if [ -z "${BASH_VERSION:-}" ]; then
  echo "setup: this is a bash script: run  bash scripts/setup.sh  and then  source .ci/node.sh  in this shell" >&2
  return 1 2>/dev/null || exit 1
fi

# Sourced: run the steps in a child bash (so that `set -e` and `exit` stay there), then put Node on this
# shell's PATH.
if [ -n "${BASH_SOURCE[0]:-}" ] && [ "${BASH_SOURCE[0]}" != "$0" ]; then
  if IMAGE_CLONE_SETUP_SOURCED=1 bash "${BASH_SOURCE[0]}" "$@"; then
    source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.ci/node.sh"
  else
    false
  fi
  return
fi

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$SECONDS
say() { echo "setup: $*" >&2; }
took() { echo "$(( SECONDS - $1 ))s"; }

# --- What this machine lacks that this script cannot fix: said first, before anything slow. ---
packages="$(awk '!/^#/ && NF { print $1 }' .ci/debian-packages | uniq | tr '\n' ' ')"
missing=""
if command -v dpkg-query >/dev/null; then
  for p in $packages; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+="$p "
  done
  # No Node at all: Debian's npm brings one, which .ci/node.sh then uses to fetch Node 24.
  command -v npm >/dev/null || missing+="npm "
fi
problems=0
if [ -n "$missing" ] && ! command -v apt-get >/dev/null; then
  say "cannot install packages: not a Debian-family system (no apt-get); install the equivalents of ${packages}with your package manager (see .ci/debian-packages), then run: bash scripts/setup.sh"
  problems=1
elif ! command -v dpkg-query >/dev/null; then
  say "cannot check packages: not a Debian-family system (no dpkg); install the equivalents of ${packages}with your package manager (see .ci/debian-packages); IMAGE_CLONE_SETUP_PACKAGES=skip bash scripts/setup.sh then skips this step"
  [ "${IMAGE_CLONE_SETUP_PACKAGES:-}" = skip ] || problems=1
elif [ -n "$missing" ] && [ "$(id -u)" != 0 ]; then
  say "cannot install Debian packages as $(id -un) (root needed): run  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing% }  then: source scripts/setup.sh"
  problems=1
fi
go_min=1.26
go_version="$(go env GOVERSION 2>/dev/null | sed 's/^go//')" || go_version=""
if [ -z "$go_version" ]; then
  say "cannot build the test harness: Go >= $go_min is not on PATH; install it (https://go.dev/dl/, e.g. into /usr/local/go and PATH=/usr/local/go/bin:\$PATH), then run: source scripts/setup.sh"
  problems=1
elif [ "$(printf '%s\n%s\n' "$go_min" "$go_version" | sort -V | head -1)" != "$go_min" ]; then
  say "cannot build the test harness: Go $go_version is older than $go_min (the harness's go.mod files need it); install a newer Go (https://go.dev/dl/), then run: source scripts/setup.sh"
  problems=1
fi
[ "$problems" = 0 ] || exit 1
[ "$(id -u)" = 0 ] || say "note: not root: the demo and npm test's node tests need root (kubelet, containerd)"

# --- 1. Debian packages ---
step=$SECONDS
if [ -z "$missing" ]; then
  say "1/5 Debian packages: all installed ($(echo $packages | wc -w) packages from .ci/debian-packages) ($(took $step))"
else
  say "1/5 Debian packages: installing ${missing% } (apt-get)..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  say "1/5 Debian packages: installed ${missing% } ($(took $step))"
fi

# --- 2. Node ---
step=$SECONDS
source .ci/node.sh
say "2/5 Node: $(command -v node) $(node --version) ($(took $step))"

# --- 3. npm packages ---
step=$SECONDS
lock_hash="$(sha256sum package-lock.json | cut -c1-64)"
if [ -L node_modules ]; then
  # A worktree sharing another clone's node_modules: npm ci would empty the other clone's folder.
  say "3/5 npm packages: node_modules is a link to $(readlink node_modules), left alone ($(took $step))"
elif [ "$(cat node_modules/.image-clone-setup 2>/dev/null)" = "$lock_hash" ]; then
  say "3/5 npm packages: node_modules matches package-lock.json, npm ci not needed ($(took $step))"
else
  say "3/5 npm packages: npm ci..."
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.image-clone-setup
  say "3/5 npm packages: installed ($(took $step))"
fi

# --- 4. The Go test harness ---
step=$SECONDS
say "4/5 test harness: test/harness/build.sh and tools.sh (helm, Pushgateway) (seconds when cached; a cold build about 15-18 min on 2 cores)"
bash test/harness/build.sh
bash test/harness/tools.sh
say "4/5 test harness: ready in .harness/bin ($(took $step))"

# --- 5. moto: ECR's and STS's control plane in the ECR tests (test/integration/ecr-stand-in.ts) ---
# PyPI's moto[server], a third-party AWS emulator, in a virtualenv under ~/.cache kept while its version stays.
step=$SECONDS
moto_venv="${HOME}/.cache/image-clone/moto-5.2.5"
if [ -x "$moto_venv/bin/moto_server" ]; then
  say "5/5 moto: $moto_venv is installed ($(took $step))"
else
  say "5/5 moto: pip install moto[server]==5.2.5 into $moto_venv..."
  rm -rf "$moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
  say "5/5 moto: installed ($(took $step))"
fi

next="npm run demo, or npm test"
if [ "$(command -v node)" = "$root/.tools/node/node_modules/.bin/node" ] && [ -z "${IMAGE_CLONE_SETUP_SOURCED:-}" ]; then
  next="source .ci/node.sh (Node $(node --version) is in .tools/), then $next"
fi
say "done in $(took $started). Next: $next"
