#!/usr/bin/env bash
# Documentation checks (issue 21 item 6):
#   every Markdown reference in the repository resolves inside it (.ci/check-doc-refs.sh);
#   docs/api-reference.md is what scripts/gen-api-reference.py generates from proto/ now (not stale).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== doc references"
bash .ci/check-doc-refs.sh
echo "== docs/api-reference.md up to date"
python3 scripts/gen-api-reference.py --check
