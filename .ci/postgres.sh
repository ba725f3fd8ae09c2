#!/usr/bin/env bash
# Makes sure the machine's PostgreSQL (127.0.0.1:5432, trust auth) accepts connections, starting it if it does not,
# and prints the URL the PostgreSQL half of the suite uses (DOUDI_TEST_DATABASE_URL). Exit 1 if it cannot be had.
set -uo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! ready; then
    echo "PostgreSQL is not accepting connections; starting it" >&2
    (pg_ctlcluster 15 main start || service postgresql start) >&2 2>&1 || true
    for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
if ! ready; then
    echo "PostgreSQL could not be started" >&2
    exit 1
fi
echo "postgres://postgres@127.0.0.1:5432/postgres"
