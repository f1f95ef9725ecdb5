#!/usr/bin/env bash
# The foreign SOAP stacks the interop tests drive: PHP SoapClient, Java JAX-WS (wsimport),
# node-soap, .NET (Mono's wsdl.exe, mcs and System.Web.Services). Installs only what is
# missing; Debian packages need root (CI runs as root).
#   install.sh          install what is missing
#   install.sh --check  print the missing Debian packages and exit 1 if there are any
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

missing=()
# grep reads all of php's output: with -q it may stop early, and pipefail would count php's SIGPIPE
command -v php >/dev/null && php -m 2>/dev/null | grep -i '^soap$' >/dev/null || missing+=(php-cli php-soap)
command -v wsimport >/dev/null || missing+=(jaxws)
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v node >/dev/null || missing+=(nodejs npm)
command -v mono >/dev/null && command -v wsdl >/dev/null || missing+=(mono-devel)
command -v mcs >/dev/null || missing+=(mono-mcs)
[ -f /usr/lib/mono/4.5/System.Web.Services.dll ] || missing+=(libmono-system-web-services4.0-cil)

if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ] && [ ! -f "$here/node/package.json" -o -d "$here/node/node_modules/soap" ] && exit 0
  echo "${missing[*]}"
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "interop: missing ${missing[*]}; install them (Debian packages) or run as root" >&2
    exit 1
  fi
  echo "interop: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [ -f "$here/node/package.json" ] && [ ! -d "$here/node/node_modules/soap" ]; then
  (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
