#!/usr/bin/env bash
# The package as a user gets it: build, `npm pack`, install the tarball into
# an empty project, import it, add and search a few vectors, run the CLI, and
# fail if a build tool (assemblyscript, binaryen) came along. Prints the
# installed size. Needs the npm registry (the tarball's dependencies).
#   bash scripts/check-package.sh [--keep]   (--keep: leave the project for a look)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

work=$(mktemp -d "${TMPDIR:-/tmp}/quiver-package.XXXXXX")
if [[ "${1:-}" == "--keep" ]]; then
  echo "check-package: leaving $work"
else
  trap 'rm -rf "$work"' EXIT
fi

# the tarball is exactly this tree's build (prepare would rebuild too, but its
# output would mix with pack's file name on stdout)
npm run build >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
tarball=$(npm pack --ignore-scripts --silent --pack-destination "$work" | tail -n 1)
tgz="$work/$tarball"
echo "check-package: packed $tarball ($(du -k "$tgz" | cut -f1) KiB)"

listing=$(tar -tzf "$tgz")
for want in package/dist/host/index.js package/dist/host/server/cli.js package/build/quiver.wasm package/build/quiver.debug.wasm; do
  grep -qx "$want" <<<"$listing" || { echo "check-package: FAIL: the tarball has no $want"; exit 1; }
done

app="$work/app"
mkdir -p "$app"
cd "$app"
printf '{ "name": "quiver-package-check", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
npm install --no-audit --no-fund --loglevel=error "$tgz" >/dev/null
packages=$( (npm ls --all --parseable 2>/dev/null || true) | tail -n +2 | sort -u | wc -l)
echo "check-package: installed node_modules: $(du -sm node_modules | cut -f1) MB, $packages packages"

node -e "import('quiver').then(m => { if (!m.Store || !m.Index) process.exit(1) })"
cat >index-check.mjs <<'JS'
import { Index, Store } from 'quiver';
const index = new Index({ dim: 4, metric: 'l2' });
index.add([1, 2, 3], new Float32Array([0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]));
// nearest to (0, 0.9, 0, 0) is point 3 = (0, 1, 0, 0)
const hits = index.search(new Float32Array([0, 0.9, 0, 0]), 2);
index.dispose();
if (hits.ids[0] !== 3 || hits.ids.length !== 2) throw new Error(`unexpected hits ${JSON.stringify(Array.from(hits.ids))}`);
if (typeof Store.open !== 'function') throw new Error('Store.open is missing');
console.log('check-package: Index add/search ok');
JS
node index-check.mjs
npx --no-install quiver --help >help.txt
grep -q -- '--port' help.txt || { echo 'check-package: FAIL: quiver --help does not document --port'; cat help.txt; exit 1; }
echo 'check-package: npx quiver --help ok'

tools=$(find node_modules -type d \( -name assemblyscript -o -name binaryen \) -prune -print)
if [[ -n "$tools" ]]; then
  echo "check-package: FAIL: installing quiver pulled build tools:"
  echo "$tools" | sed 's/^/  /'
  du -sm $tools | sed 's/^/  MB /'
  exit 1
fi
echo 'check-package: no build tool installed; ok'
cd "$root"
