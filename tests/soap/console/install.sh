#!/usr/bin/env bash
# The browser the console tests drive: Debian's Chromium (playwright's own browser download
# is not used), its driver, and a CJK font so that Chinese labels render in screenshots.
# Installs only what is missing; Debian packages need root (CI runs as root).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
fc-list 2>/dev/null | grep -qi "noto sans cjk" || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "console tests: missing ${missing[*]}; install them (Debian packages) or run as root" >&2
    exit 1
  fi
  echo "console tests: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi
