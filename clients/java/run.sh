#!/usr/bin/env bash
# Generate the Java classes from proto/, compile clients/java/src/DoudiCheck.java and run it against a hub:
#   clients/java/run.sh --target localhost:50051 [--certs DIR] [--timeout SECS] [--metrics http://127.0.0.1:9464/metrics]
# (--certs defaults to the repository's certs-example/; --metrics, the hub's metrics_listen, adds one check)
# Everything comes from Debian's packages (installed by .ci/interop-java.sh; the list is in clients/java/README.md):
# protoc with /usr/bin/grpc_java_plugin, javac, and the jars in /usr/share/java. Generated code and classes go into a
# temporary directory removed on exit; nothing generated is committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
jars=/usr/share/java
# google/rpc/status.proto and error_details.proto (ErrorInfo is not in Debian's proto-google-common-protos 1.16).
googleapis=/usr/share/gocode/src/github.com/gogo/googleapis
# The JNI library of netty-tcnative (TLS through OpenSSL: Debian's Netty has no JDK ALPN support).
tcnative=$(dpkg -L libnetty-tcnative-jni 2>/dev/null | grep '/libnetty-tcnative\.so$' | head -1 || true)

missing=()
for t in protoc javac java; do command -v "$t" >/dev/null || missing+=("$t"); done
for f in /usr/bin/grpc_java_plugin "$googleapis/google/rpc/error_details.proto" "$jars/grpc-netty.jar" \
  "$jars/netty-codec-http2.jar" "$jars/perfmark-api.jar" "$jars/protobuf.jar" "$jars/guava.jar"; do
  [ -e "$f" ] || missing+=("$f")
done
[ -n "$tcnative" ] || missing+=("libnetty-tcnative.so")
if [ ${#missing[@]} -gt 0 ]; then
  echo "FAIL: java: missing ${missing[*]}: install the packages listed in clients/java/README.md (.ci/interop-java.sh does)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/doudi-java.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gen" "$work/classes" "$work/native"

# 1. Stubs: messages (--java_out) and services (--grpc-java_out) of proto/doudi/v1 and the two google.rpc files.
(cd "$root/proto" && protoc -I . -I /usr/include -I "$googleapis" \
  --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
  --java_out="$work/gen" --grpc-java_out="$work/gen" \
  doudi/v1/*.proto google/rpc/status.proto google/rpc/error_details.proto)
# The generated *Grpc.java carry @javax.annotation.Generated(...) over three lines; JDK 11+ no longer has it.
find "$work/gen" -name '*Grpc.java' -exec sed -i '/^@javax\.annotation\.Generated(/,/)$/d' {} +

# 2. Class path: the split Netty jars (not netty-all.jar), grpc-java, protobuf-java, guava, perfmark. No
# proto-google-common-protos.jar: com.google.rpc.* comes from the classes generated above, with the same protoc as the
# protobuf-java runtime.
cp=$work/classes
for j in grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub protobuf guava perfmark-api \
  netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-codec-socks netty-common netty-handler \
  netty-handler-proxy netty-resolver netty-transport netty-tcnative; do
  cp="$cp:$jars/$j.jar"
done

# 3. Compile (javac's notes about the generated code's deprecated API are shown only when it fails). javac runs once over
# ~120,000 generated lines: its JVM with the quick JIT only (C1) and the serial collector takes a third of the time.
javac -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC -nowarn -encoding UTF-8 -d "$work/classes" -cp "$cp" $(find "$work/gen" -name '*.java') "$here/src/DoudiCheck.java" \
  2>"$work/javac.log" || { cat "$work/javac.log" >&2; echo "FAIL: java: javac" >&2; exit 1; }

# 4. Netty loads the native library only as libnetty_tcnative.so and refuses a symlink whose target has another name.
cp "$tcnative" "$work/native/libnetty_tcnative.so"

java -Djava.library.path="$work/native" -Ddoudi.certs="$root/certs-example" -Dfile.encoding=UTF-8 -Dstdout.encoding=UTF-8 \
  -cp "$cp" DoudiCheck "$@"
