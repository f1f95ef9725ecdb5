#!/usr/bin/env bash
# .NET ASMX client on Mono (Debian's mono-devel, mono-mcs, libmono-system-web-services4.0-cil):
# wsdl.exe generates the proxies (and the callback services' server classes) from the served
# WSDLs, mcs compiles them with the files
# an integrator copies from docs/dotnet/ and Flow.cs, mono runs the flow. Fails when wsdl.exe
# prints any warning or generates a Bare (unwrapped) method. Needs HIS_PACS_URL and the
# HIS_PACS_* credentials.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
docs="$(cd "$here/../../../../docs/dotnet" && pwd)"
build="$here/build"
url="${HIS_PACS_URL:?HIS_PACS_URL is not set}"
url="${url%/}"

rm -rf "$build"
mkdir -p "$build"

generate() {  # generate <service> <namespace> [wsdl options]
  local log="$build/wsdl-$1.log" status=0
  wsdl -nologo "${@:3}" -namespace:"$2" -out:"$build/$2.cs" "$url/ws/$1?wsdl" >"$log" 2>&1 || status=$?
  sed "s/^/wsdl $1: /" "$log"
  if [ "$status" -ne 0 ]; then
    echo "wsdl $1 failed (exit $status)" >&2
    exit 1
  fi
  if grep -qiE 'warning|error' "$log"; then
    echo "wsdl $1 printed warnings" >&2
    exit 1
  fi
  if grep -q 'SoapParameterStyle.Bare' "$build/$2.cs"; then
    echo "wsdl $1 generated Bare methods" >&2
    exit 1
  fi
  echo "wsdl $1: $(grep -c 'SoapParameterStyle.Wrapped' "$build/$2.cs") Wrapped operations"
}
generate his His
generate pacs Pacs
# the push-mode services a .NET HIS or PACS implements: ASMX WebService classes to derive from
generate his-callback HisCallback -server
generate pacs-callback PacsCallback -server

mcs -langversion:7 -warnaserror -nowarn:618 -out:"$build/Flow.exe" \
  -r:System.Web.Services.dll -r:System.Xml.dll -r:System.Core.dll \
  "$build/His.cs" "$build/Pacs.cs" "$build/HisCallback.cs" "$build/PacsCallback.cs" "$docs"/*.cs "$here/Flow.cs"
# as on a HIS workstation in China: Local DateTimes carry +08:00
TZ=Asia/Shanghai exec mono "$build/Flow.exe"
