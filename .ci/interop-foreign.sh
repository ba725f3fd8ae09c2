#!/usr/bin/env bash
# Interop with foreign (non-Rust) gRPC clients, against a real hub over mutual TLS with certs-example/:
#   clients/python/doudi_check.py (grpcio, stubs generated from proto/ at run time into a temp dir) and
#   clients/node/check.js (@grpc/grpc-js + @grpc/proto-loader, proto/ loaded at run time).
# Each pushes (ACCEPTED, then DUPLICATE), reads, lists, is refused (PERMISSION_DENIED), reads a status
# message with Chinese text back intact, and watches the change feed and resumes it from a cursor; the Python client also
# reads the google.rpc error details of a refusal (grpcio-status) and sends a gzip-compressed request. The Python packages go into tools/venv-python (gitignored,
# reinstalled only when clients/python/requirements.txt changes); the Node ones by `npm ci` from the
# committed package-lock.json. DOUDI_BIN names the hub binary (default
# ${CARGO_TARGET_DIR:-target}/debug/doudi, built with `cargo build` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/tools"
mkdir -p "$tools"

echo "== python client: venv"
venv="$tools/venv-python"
req="$root/clients/python/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$( (sha256sum "$req"; python3 --version) | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "tools/venv-python up to date"
else
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi
"$venv/bin/python" -c 'import grpc, grpc_tools, grpc_status, google.rpc.error_details_pb2, google.protobuf as p; print("grpcio", grpc.__version__, "protobuf", p.__version__)'

echo "== node client: npm ci"
node --version
(cd clients/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

bin="${DOUDI_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/doudi}"
if [ ! -x "$bin" ]; then
  [ -n "${DOUDI_BIN:-}" ] && { echo "DOUDI_BIN=$DOUDI_BIN is not an executable"; exit 1; }
  cargo build --quiet
fi
# The hub reads every DOUDI_* environment variable as configuration and refuses unknown keys ("BIN").
unset DOUDI_BIN
work=$(mktemp -d)
DOUDI_DATA_KEY=$("$bin" keys generate)
export DOUDI_DATA_KEY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --database-url "sqlite://$work/hub.db" --certs-dir certs-example >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$work/serve.log"; exit 1; }

# Wait until the hub accepts TCP connections (the clients then wait for a TLS channel themselves).
for _ in $(seq 1 150); do
  kill -0 $pid 2>/dev/null || fail "the hub exited at start"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "hub listening on 127.0.0.1:$port"
ok "hub listening on 127.0.0.1:$port"

echo "== python client (grpcio)"
"$venv/bin/python" clients/python/doudi_check.py --target "localhost:$port" || fail "python client"
echo "== node client (@grpc/grpc-js)"
node clients/node/check.js --target "localhost:$port" || fail "node client"

if grep -qE '621022199001010215|621022199102020324' "$work/serve.log"; then fail "a full ID number reached the log"; fi
ok "no full ID number in the server log"
echo "foreign-client interop: all checks passed"
