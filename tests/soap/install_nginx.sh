#!/usr/bin/env bash
# nginx from Debian, for the TLS reverse proxy and the load balancer the deployment tests
# put in front of `serve`. Installs it only when missing; Debian packages need root (CI runs
# as root). The package's own service is not used: the tests run nginx with their own config.
set -euo pipefail
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deploy tests: nginx is missing; install it (apt-get install nginx-light) or run as root" >&2
  exit 1
fi
echo "deploy tests: installing nginx-light" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# the package would start its default site; policy-rc.d (if none is there) keeps it from it
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends nginx-light >/dev/null
