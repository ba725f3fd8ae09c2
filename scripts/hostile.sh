#!/usr/bin/env bash
# The hostile-input suite at full size against a real `doudi serve` process (issue 7; SECURITY.md "Hostile inputs").
# Usage: scripts/hostile.sh [SCALE] [ROUNDS]   (SCALE 1: a client process killed mid-stream, then ROUNDS (default 3)
# rounds of 10,000 streams opened and dropped, 2,000 cancelled requests, 200 stalled TLS handshakes, 1,000 connections
# each with an unknown and a revoked certificate). Prints one line per scenario with the hub's RSS after it, and
# HOSTILE SUITE PASSED or FAILED (exit status 1): RSS after the last round must be within 16 MiB of RSS after round 1.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-1}
ROUNDS=${2:-3}
cargo build --release --quiet --bin doudi --example hostile
BIN=target/release/doudi
TMP=$(mktemp -d)
trap 'kill "${HUB:-}" 2>/dev/null || true; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$BIN certs init --out "$TMP/certs" >/dev/null
DOUDI_DATA_KEY=$($BIN keys generate)
export DOUDI_DATA_KEY
# No request quota (the suite measures streams and connections, not rate); certificate files polled every second.
DOUDI_RATE_PER_AGENCY=0 DOUDI_CRL_POLL_SECS=1 DOUDI_HANDSHAKE_TIMEOUT_SECS=5 \
  $BIN serve --listen "127.0.0.1:$PORT" --database-url "sqlite://$TMP/hub.db" --certs-dir "$TMP/certs" 2>"$TMP/hub.log" &
HUB=$!
for _ in $(seq 100); do grep -q "doudi serving" "$TMP/hub.log" && break; sleep 0.2; done
# Revoke the education certificate while the hub runs; the poll picks the CRL up.
$BIN certs revoke education --dir "$TMP/certs" >/dev/null
sleep 2
target/release/examples/hostile --server "https://localhost:$PORT" --certs-dir "$TMP/certs" --pid "$HUB" --scale "$SCALE" --rounds "$ROUNDS"
echo "hub log lines by level: $(grep -c WARN "$TMP/hub.log" || true) warn, $(grep -c ERROR "$TMP/hub.log" || true) error"
