#!/usr/bin/env bash
# Schema checks of proto/ with buf (issue 21 item 5; docs/proto-compat.md):
#   buf lint       the STANDARD rules of buf.yaml, with its justified exceptions;
#   buf breaking   proto/ against the last released contract, proto/released/doudi-v1.binpb (FILE rules: wire, JSON
#                  and generated-code compatibility).
# buf is the npm package @bufbuild/buf, pinned in .ci/buf/package.json and package-lock.json and installed into
# tools/buf (gitignored) by .ci/buf/ensure.sh; BUF=/path/to/buf uses another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=$(bash .ci/buf/ensure.sh)
echo "buf $("$buf" --version)"

echo "== buf lint"
if ! "$buf" lint; then
  echo "FAIL: buf lint (above). Fix the .proto, or, where the fix would change the wire format, generated names or"
  echo "JSON names that released clients use, add a narrow exception with its reason to buf.yaml (docs/proto-compat.md)."
  exit 1
fi
echo "ok: buf lint"

released=proto/released/doudi-v1.binpb
echo "== buf breaking against $released"
if ! "$buf" breaking --against "$released"; then
  echo "FAIL: buf breaking (above): this change breaks clients built from the released contract. Add a new field,"
  echo "message or RPC instead of renaming, renumbering or removing one (docs/proto-compat.md)."
  exit 1
fi
echo "ok: buf breaking"
