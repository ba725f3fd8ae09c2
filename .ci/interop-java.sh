#!/usr/bin/env bash
# Interop with a Java client, against a real hub over mutual TLS with certs-example/: clients/java/src/DoudiCheck.java
# (grpc-java 1.41 from Debian's packages; clients/java/run.sh generates the stubs from proto/ at run time, compiles
# with javac and runs). It does the Python and Node clients' checks (push, read, list, PERMISSION_DENIED, Chinese
# status text, WatchChanges and its resume, google.rpc error details, gzip) plus a ListRecipients page near
# grpc-java's default 4 MiB inbound limit and a deadline shorter than the call (DEADLINE_EXCEEDED; the hub stops the
# read: no audit event, and its metrics count the call CANCELLED). The Debian packages are installed here when any
# is missing (apt-get; nothing is fetched when all are installed). DOUDI_BIN names the hub binary (default
# ${CARGO_TARGET_DIR:-target}/debug/doudi, built with `cargo build` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

echo "== java client: Debian packages"
# default-jdk-headless: javac; protobuf-compiler + libprotobuf-dev: protoc and google/protobuf/*.proto;
# protobuf-compiler-grpc-java-plugin: /usr/bin/grpc_java_plugin; libgrpc-java, libprotobuf-java, libguava-java,
# libperfmark-java, libnetty-java: the class path (libgrpc-java depends on none of them); libnetty-tcnative-java +
# libnetty-tcnative-jni: TLS with ALPN through OpenSSL; golang-github-gogo-googleapis-dev: google/rpc/status.proto and
# error_details.proto (source files only, no Go toolchain), since Debian's proto-google-common-protos lacks ErrorInfo.
packages=(default-jdk-headless protobuf-compiler libprotobuf-dev protobuf-compiler-grpc-java-plugin libgrpc-java
  libprotobuf-java libguava-java libperfmark-java libnetty-java libnetty-tcnative-java libnetty-tcnative-jni
  golang-github-gogo-googleapis-dev)
missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "all ${#packages[@]} installed"
else
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "$(java -version 2>&1 | head -1); protoc $(protoc --version | cut -d' ' -f2); grpc-java $(dpkg-query -W -f='${Version}' libgrpc-java);" \
  "protobuf-java $(dpkg-query -W -f='${Version}' libprotobuf-java); netty $(dpkg-query -W -f='${Version}' libnetty-java)"

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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
mport=$(free_port)
"$bin" serve --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" --database-url "sqlite://$work/hub.db" \
  --certs-dir certs-example >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$work/serve.log"; exit 1; }

# Wait until the hub accepts TCP connections (the client then waits for a TLS channel itself).
for _ in $(seq 1 150); do
  kill -0 $pid 2>/dev/null || fail "the hub exited at start"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "hub listening on 127.0.0.1:$port"
ok "hub listening on 127.0.0.1:$port"

echo "== java client (grpc-java)"
bash clients/java/run.sh --target "localhost:$port" --metrics "http://127.0.0.1:$mport/metrics" || fail "java client"

if grep -qE '621022198707070311' "$work/serve.log"; then fail "a full ID number reached the log"; fi
ok "no full ID number in the server log"
echo "java-client interop: all checks passed"
