#!/usr/bin/env bash
# The layout invariants of ARCHITECTURE.md "Invariants" (issue 22 item 5), checked by grep: who may use which crate,
# which module may name which, the module-file convention, and that ARCHITECTURE.md stays a short, true map.
# The hub and grpc invariants (grpc/ talks only to the hub; the domain reads no clock) are .ci/check-invariants.sh's.
#
# "Code" below is a Rust file's lines without comments (`//`, `///`, `//!`) and without its test code: a
# `#[cfg(test)] mod NAME { … }` block, or a whole file declared `#[cfg(test)] mod NAME;` by its parent. Test code may
# do what the hub's code may not (open files, compare both backends' migrations, …).
#
# Prints every violation as path:line: text and what rule it breaks, and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
fail() {
    echo "check-layout: $*" >&2
    failures=$((failures + 1))
}
# rule TEXT: the rule the violations just printed break.
rule() { echo "check-layout:   ^ $*" >&2; }

# Files declared `#[cfg(test)] mod NAME;` (test support as a file of its own): their whole text is test code.
test_files() {
    grep -rn -A1 --include='*.rs' '^\s*#\[cfg(test)\]' src crates |
        sed -nE 's/^(.*)-[0-9]+-\s*(pub(\([a-z]+\))? )?mod ([a-z_0-9]+);.*/\1 \4/p' |
        while read -r parent name; do
            dir=$(dirname "$parent")
            base=$(basename "$parent" .rs)
            case "$base" in mod | lib | main) ;; *) dir="$dir/$base" ;; esac
            for f in "$dir/$name.rs" "$dir/$name/mod.rs"; do [ -f "$f" ] && echo "$f"; done
        done
    return 0
}
TEST_FILES=$(test_files)

# code FILE…: the code lines of the files, as path:line:text.
code() {
    local f
    for f in "$@"; do
        grep -qxF "$f" <<<"$TEST_FILES" && continue
        awk -v file="$f" '
            skip > 0 {
                depth += gsub(/\{/, "{"); depth -= gsub(/\}/, "}")
                if (depth <= 0) skip = 0
                next
            }
            pending && /^[[:space:]]*(pub(\([a-z]+\))? )?mod [a-z_0-9]+ *\{/ {
                skip = 1; depth = gsub(/\{/, "{") - gsub(/\}/, "}"); pending = 0
                if (depth <= 0) skip = 0
                next
            }
            { pending = 0 }
            /^[[:space:]]*#\[cfg\(test\)\][[:space:]]*$/ { pending = 1; next }
            /^[[:space:]]*\/\// { next }
            { print file ":" FNR ":" $0 }
        ' "$f"
    done
}

# rust_files DIR…: every .rs file under the directories (or the files themselves).
rust_files() { find "$@" -name '*.rs' -type f | sort; }

# forbid RULE PATTERN FILE…: every code line of the files that matches the extended regex PATTERN is a violation.
forbid() {
    local rule=$1 pattern=$2
    shift 2
    local hits
    hits=$(code "$@" | grep -E "$pattern" || true)
    if [ -n "$hits" ]; then
        while IFS= read -r line; do fail "$line"; done <<<"$hits"
        rule "$rule"
    fi
}

echo "== the domain and the reports do no I/O"
forbid "crates/domain/src/ and crates/report/src/ are pure: no tokio, sqlx, tonic, prost, rusqlite, hyper, tower (ARCHITECTURE.md)" \
    '(^|[^[:alnum:]_])(tokio|sqlx|tonic|tonic_[a-z]+|prost|rusqlite|hyper|tower|reqwest)::' \
    $(rust_files crates/domain/src crates/report/src)
forbid "crates/domain/src/ and crates/report/src/ open no file, socket or process (the caller passes bytes in and out)" \
    'std::(fs|net|process)|(^|[^[:alnum:]_])(File|TcpStream|TcpListener|Command)::' \
    $(rust_files crates/domain/src crates/report/src)
forbid "crates/domain/src/ and crates/report/src/ read no environment (the operator's login: ops::direct_actor)" \
    'std::env' \
    $(rust_files crates/domain/src crates/report/src)

echo "== only src/store/ speaks SQL"
# sqlx and rusqlite paths in code (a log filter such as "info,sqlx=warn" is not a use). The benchmark of PostgreSQL
# creates and drops its own databases (CREATE/DROP DATABASE on a server connection), outside any hub.
forbid "sqlx and rusqlite are used in src/store/ only (and src/tools/bench/pg.rs, for its benchmark databases)" \
    '(^|[^[:alnum:]_,"=])(sqlx|rusqlite)::|^[[:space:]]*(pub )?use (sqlx|rusqlite)\b' \
    $(rust_files src | grep -v '^src/store/' | grep -vxF src/tools/bench/pg.rs)

echo "== nothing outside src/store/ names a backend or a pool"
forbid "outside src/store/ the store is Store (Arc<dyn Storage>): no backend type, backend module or pool" \
    'SqliteStore|PgStore|SqlitePool|PgPool|store::(sqlite|postgres)::|(sqlite|pg)_pool\(' \
    $(rust_files src | grep -v '^src/store/')

echo "== no backend imports the other"
forbid "src/store/sqlite/ imports nothing of src/store/postgres/" \
    '(super|store)::postgres|PgStore|PgPool|sqlx::(postgres|Postgres)|Pg[A-Z][a-zA-Z]*' \
    $(rust_files src/store/sqlite)
forbid "src/store/postgres/ imports nothing of src/store/sqlite/ (nor rusqlite)" \
    '(super|store)::sqlite|SqliteStore|SqlitePool|sqlx::(sqlite|Sqlite)|rusqlite' \
    $(rust_files src/store/postgres)
forbid "the shared store modules (contract, rows, error, writer, group, plan/, sql/) import neither backend" \
    '(super|store)::(sqlite|postgres)::|SqliteStore|PgStore' \
    $(rust_files src/store/contract.rs src/store/rows.rs src/store/error.rs src/store/writer.rs src/store/group.rs \
        src/store/plan src/store/sql)

echo "== protobuf types stay in grpc/ and on the client side"
forbid "src/hub, src/store, crates/domain/src, crates/report/src and src/security never name protobuf or tonic types" \
    '(^|[^[:alnum:]_])(pb|prost|tonic|tonic_[a-z]+)::|^[[:space:]]*(pub )?use (prost|tonic)\b' \
    $(rust_files src/hub src/store crates/domain/src crates/report/src src/security)

echo "== money is never a float in the domain; nothing uses the local time zone"
forbid "crates/domain/src/ holds amounts as Money (integer fen): no f32/f64" \
    '(^|[^[:alnum:]_])f(32|64)([^[:alnum:]_]|$)' \
    $(rust_files crates/domain/src)
forbid "business dates are Asia/Shanghai, instants UTC: chrono's Local is never used" \
    '(^|[^[:alnum:]_])Local([^[:alnum:]_]|$)' \
    $(rust_files src)

echo "== unsafe only where it is documented"
# Test code included: every unsafe block of the crate is listed here.
hits=$(find src -name '*.rs' -type f | sort | xargs grep -nE '(^|[^[:alnum:]_])unsafe([^[:alnum:]_]|$)' |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' |
    grep -vE '^(src/store/sqlite/direct\.rs|src/server/memory\.rs):' || true)
if [ -n "$hits" ]; then
    while IFS= read -r line; do fail "$line"; done <<<"$hits"
    rule "unsafe is allowed only in src/store/sqlite/direct.rs (sqlx's handle) and src/server/memory.rs (glibc heap)"
fi

echo "== one module-file convention: mod.rs"
while IFS= read -r dir; do
    [ -f "$dir/mod.rs" ] || fail "$dir/ has no mod.rs (a module with children is a folder with mod.rs)"
    [ -e "$dir.rs" ] && fail "$dir.rs beside $dir/ (use $dir/mod.rs)"
done < <({ find src -mindepth 1 -type d; find crates/*/src -mindepth 1 -type d; } | sort)
hits=$(grep -rn --include='*.rs' '#\[path' src crates || true)
[ -z "$hits" ] || { fail "$hits"; rule "no #[path] attributes: a module's file is where its name says"; }

echo "== ARCHITECTURE.md is short and names every folder"
lines=$(wc -l <ARCHITECTURE.md)
[ "$lines" -le 100 ] || fail "ARCHITECTURE.md has $lines lines, more than 100 (decisions go to docs/decisions.md)"
while IFS= read -r dir; do
    grep -qF "\`$dir/\`" ARCHITECTURE.md || fail "ARCHITECTURE.md's codemap does not name \`$dir/\`"
done < <({ find src -mindepth 1 -type d; find crates/*/src -type d; } | sort)
for dir in crates proto migrations docs tests clients scripts .ci calendar certs-example examples fuzz; do
    grep -qF "\`$dir/\`" ARCHITECTURE.md || fail "ARCHITECTURE.md's codemap does not name \`$dir/\`"
done

echo "== every path ARCHITECTURE.md and docs/decisions.md cite exists"
# A backticked token that starts with a folder of the repository is a path; `FILE.rs::NAME` also names a function
# (a test) that FILE must define. Globs and placeholders (`*`, `{`, `<`) are not checked.
paths_out=$(mktemp)
for doc in ARCHITECTURE.md docs/decisions.md; do
    [ -f "$doc" ] || { fail "$doc is missing"; continue; }
    grep -noE '`[^`]+`' "$doc" | while IFS= read -r hit; do
        no=${hit%%:*}
        token=${hit#*:}
        token=${token//\`/}
        case "$token" in
            src/* | tests/* | proto/* | migrations/* | docs/* | .ci/* | scripts/* | clients/* | calendar/* | \
                certs-example/* | examples/* | fuzz/*) ;;
            *) continue ;;
        esac
        case "$token" in *'*'* | *'{'* | *'<'* | *' '*) continue ;; esac
        path=${token%%::*}
        if [ ! -e "$path" ]; then
            echo "$doc:$no: \`$token\`: $path does not exist"
        elif [ "$path" != "$token" ]; then
            name=${token##*::}
            grep -qE "fn $name\b|\"$name\"" "$path" || echo "$doc:$no: \`$token\`: $path defines no $name"
        fi
    done
done >"$paths_out" || true
if [ -s "$paths_out" ]; then
    while IFS= read -r line; do fail "$line"; done <"$paths_out"
fi
rm -f "$paths_out"

if [ "$failures" -gt 0 ]; then
    echo "check-layout: FAILED ($failures violations)" >&2
    exit 1
fi
echo "check-layout: the layout invariants hold"
