#!/usr/bin/env bash
# Invariants of the code that the compiler does not check (issue 22 item 3: one way into the application), by grep.
# Each check prints what broke it and the rule; the script fails if any check fails.
#
#   1. grpc/ talks to the hub only: it never names `crate::store` (the row types it needs come through `crate::hub`).
#   2. grpc/ never reaches past the hub: no `hub.store`, `hub.keys`, `hub.policy`, `hub.clock`, … (the fields are
#      private; the accessors are for the server, tools and tests).
#   3. grpc/ never reads the clock: no `Utc::now`, `Local::now`, `SystemTime::now` (it takes `hub.today()` /
#      `hub.now()`).
#   4. The domain takes dates as arguments: no `Utc::now`, `Local::now`, `SystemTime::now` in crates/domain/src outside
#      `#[cfg(test)]`, except `system_today` in crates/domain/src/id_number.rs (IdNumber's FromStr / Deserialize).
#   5. Every read of "now" in the hub goes through its clock: `Utc::now` etc. appear in src/hub only inside
#      `impl Clock` of src/hub/mod.rs.
#   6. Nothing uses chrono's `Local` (business dates are Asia/Shanghai, instants UTC).
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
fail() {
    echo "FAIL: $1" >&2
    shift
    printf '  %s\n' "$@" >&2
    failed=1
}

# Lines of the Rust files under $1 matching the ERE $2, outside each file's `#[cfg(test)]` tail and comments, as
# FILE:LINE: TEXT.
code_matches() {
    local dir=$1 pattern=$2
    [ -d "$dir" ] || { echo "check-invariants: $dir is not a folder (moved? update this script)" >&2; exit 1; }
    find "$dir" -name '*.rs' -print0 | sort -z | while IFS= read -r -d '' f; do
        awk -v f="$f" '
            /^[[:space:]]*#\[cfg\(test\)\]/ { exit }
            /^[[:space:]]*\/\// { next }
            { print f ":" FNR ": " $0 }
        ' "$f"
    done | grep -E -- "^[^:]*:[0-9]*: .*$pattern" || true
}

NOW='(Utc::now|Local::now|SystemTime::now)'

echo "== grpc/ does not import crate::store"
hits=$(code_matches src/grpc 'crate::store')
[ -z "$hits" ] || fail "src/grpc names crate::store: use the hub's methods and the types it re-exports (crate::hub::…)" "$hits"

echo "== grpc/ does not reach past the hub"
hits=$(code_matches src/grpc '\<hub\.(store|keys|policy|clock|coverage|pushes|head_signer|refusals|signer_trust)\>')
[ -z "$hits" ] || fail "src/grpc reaches a part of the hub: add a hub method that does what the handler needs" "$hits"

echo "== grpc/ does not read the clock"
hits=$(code_matches src/grpc "$NOW")
[ -z "$hits" ] || fail "src/grpc reads the clock: take hub.now() / hub.today() (the hub's clock)" "$hits"

echo "== the domain takes dates as arguments"
hits=$(code_matches crates/domain/src "$NOW" | grep -v '^crates/domain/src/id_number\.rs:[0-9]*:     shanghai_date(chrono::Utc::now())$' || true)
[ -z "$hits" ] || fail "crates/domain/src reads the clock: take the date or instant as an argument" "$hits"
n=$(code_matches crates/domain/src "$NOW" | wc -l)
[ "$n" -le 1 ] || fail "crates/domain/src reads the clock more than once (only id_number.rs's system_today may)"

echo "== the hub reads now only through its clock"
hits=$(code_matches src/hub "$NOW" | grep -v '^src/hub/mod\.rs:' || true)
[ -z "$hits" ] || fail "src/hub reads the clock past Hub::clock: use self.clock.now() (business time) or self.clock.system_now() (time of record, real time)" "$hits"
hits=$(awk '
    /^[[:space:]]*#\[cfg\(test\)\]/ { exit }
    /^impl Clock \{/ { in_clock = 1 }
    in_clock && /^\}/ { in_clock = 0; next }
    !in_clock && !/^[[:space:]]*\/\// { print "src/hub/mod.rs:" FNR ": " $0 }
' src/hub/mod.rs | grep -E -- "$NOW" || true)
[ -z "$hits" ] || fail "src/hub/mod.rs reads the clock outside impl Clock" "$hits"

echo "== nothing uses chrono's Local"
hits=$(code_matches src '(chrono::Local\>|\<Local::)')
[ -z "$hits" ] || fail "chrono::Local is used: business dates are Asia/Shanghai (domain::calendar), instants UTC" "$hits"

if [ "$failed" -ne 0 ]; then
    echo "invariant checks FAILED" >&2
    exit 1
fi
echo "invariant checks passed"
