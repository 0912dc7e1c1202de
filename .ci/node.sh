# Sourced by .ci/run (and usable by hand: `source .ci/node.sh`): puts a Node.js >= 22.19 first on PATH.
# When the machine's node is older, Node 24 is installed from the npm registry's `node` package into
# .tools/node inside the project (git-ignored). The system's node is never replaced.
node_wanted=22.19.0
node_pinned=24.9.0
node_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/node"

node_is_new_enough() {
  "$1" -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    const [x, y] = process.argv[1].split(".").map(Number);
    process.exit(a > x || (a === x && b >= y) ? 0 : 1);' "$node_wanted" 2>/dev/null
}

if ! command -v node >/dev/null 2>&1 || ! node_is_new_enough node; then
  if ! [ -x "$node_dir/node_modules/.bin/node" ] || ! node_is_new_enough "$node_dir/node_modules/.bin/node"; then
    echo "node.sh: installing Node $node_pinned from the npm registry into $node_dir" >&2
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-save --no-audit --no-fund --loglevel=error "node@$node_pinned" >&2 \
      || { echo "node.sh: could not install Node $node_pinned from the npm registry" >&2; return 1; }
  fi
  export PATH="$node_dir/node_modules/.bin:$PATH"
  node_is_new_enough node || { echo "node.sh: $(command -v node) is $(node --version), need >= $node_wanted" >&2; return 1; }
fi
