#!/usr/bin/env bash
# Java JAX-WS client from the Debian packages (jaxws, libjaxws-java, libjaxb-java, ...):
# wsimport the served WSDLs, javac the generated classes with Flow.java, run the flow.
# Fails when wsimport prints any warning. Needs HIS_PACS_URL and the HIS_PACS_* credentials.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/build"
url="${HIS_PACS_URL:?HIS_PACS_URL is not set}"
url="${url%/}"

jars=(
  jaxws-api jaxws-rt jaxb-api jaxb-runtime jaxb-core istack-commons-runtime txw2
  javax.xml.soap-api saaj-impl stax-ex streambuffer mimepull javax.activation
  metro-policy gmbal glassfish-management-api glassfish-pfl-basic glassfish-pfl-tf
  geronimo-annotation-1.3-spec jws-api FastInfoset
)
cp=""
for jar in "${jars[@]}"; do
  path="/usr/share/java/$jar.jar"
  [ -f "$path" ] || { echo "missing $path (Debian packages jaxws, libjaxws-java, libjaxb-java)" >&2; exit 1; }
  cp="$cp${cp:+:}$path"
done

rm -rf "$build"
mkdir -p "$build/src" "$build/classes"

generate() {  # generate <service> <package>
  local log="$build/wsimport-$1.log" status=0
  wsimport -keep -Xnocompile -encoding UTF-8 -p "$2" -s "$build/src" -d "$build/classes" \
    "$url/ws/$1?wsdl" >"$log" 2>&1 || status=$?
  sed "s/^/wsimport $1: /" "$log"
  if [ "$status" -ne 0 ]; then
    echo "wsimport $1 failed (exit $status)" >&2
    exit 1
  fi
  if grep -qiE '\[WARNING\]|warning' "$log"; then
    echo "wsimport $1 printed warnings" >&2
    exit 1
  fi
}
generate his cn.hospital.his
generate pacs cn.hospital.pacs

find "$build/src" -name '*.java' >"$build/sources.txt"
javac -nowarn -encoding UTF-8 -cp "$cp" -d "$build/classes" @"$build/sources.txt" \
  "$here/UsernameTokenHandler.java" "$here/Flow.java"

# The SAAJ property names the implementation under its standard key (saaj-impl registers it
# under the deprecated one, and the API logs a warning for every message otherwise).
exec java -Dfile.encoding=UTF-8 -Dsun.stdout.encoding=UTF-8 -Dsun.stderr.encoding=UTF-8 \
  -Djavax.xml.soap.SAAJMetaFactory=com.sun.xml.messaging.saaj.soap.SAAJMetaFactoryImpl \
  -cp "$build/classes:$cp" Flow
