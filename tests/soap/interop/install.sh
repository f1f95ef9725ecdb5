#!/usr/bin/env bash
# The foreign SOAP stacks the interop tests drive: PHP SoapClient, Java JAX-WS (wsimport),
# node-soap. Installs only what is missing; Debian packages need root (CI runs as root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

missing=()
command -v php >/dev/null && php -m | grep -qi '^soap$' || missing+=(php-cli php-soap)
command -v wsimport >/dev/null || missing+=(jaxws)
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v node >/dev/null || missing+=(nodejs npm)
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
