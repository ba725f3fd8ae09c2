#!/usr/bin/env bash
# Prints the path of a buf binary: $BUF if set, else the version pinned in .ci/buf/package.json and package-lock.json,
# installed by `npm ci` into tools/buf (gitignored; reinstalled only when the manifests change). Progress goes to
# standard error, so `buf=$(bash .ci/buf/ensure.sh)` works. Used by .ci/check-proto.sh and scripts/gen-api-reference.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${BUF:-}" ]; then echo "$BUF"; exit 0; fi
dir="$root/tools/buf"
stamp="$dir/.manifests.sha256"
want=$(cat "$root/.ci/buf/package.json" "$root/.ci/buf/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -x "$dir/node_modules/.bin/buf" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  command -v npm >/dev/null || { echo "ensure buf: npm is needed to install buf (e.g. apt-get install npm)" >&2; exit 1; }
  echo "ensure buf: npm ci into tools/buf" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$root/.ci/buf/package.json" "$root/.ci/buf/package-lock.json" "$dir/"
  # --ignore-scripts: the package's postinstall only replaces its launcher with the platform binary; the launcher
  # (bin/buf) finds the binary of @bufbuild/buf-<platform> itself.
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
  echo "$want" >"$stamp"
fi
echo "$dir/node_modules/.bin/buf"
