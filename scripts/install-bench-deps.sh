#!/usr/bin/env bash
# Installs what `make bench` and `make soak` need besides Prism's own build
# dependencies (scripts/install-deps.sh): nginx (the fake provider and the
# proxy_pass baseline) and wrk (the load generator; its Lua is built in).
# Idempotent: a machine that already has both costs one dpkg query.
#
# nginx is only ever started by bench/run.sh with its own configuration in
# the foreground; the Debian package's system service is stopped and
# disabled when this script installs it, so it never holds port 80.
set -euo pipefail

PKGS=(nginx wrk)
# Any nginx flavour already installed will do.
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  PKGS=(wrk)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101: no service is started by the package's postinst.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && $SUDO rm -f "$policy"; return 0; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Should a service have started anyway (systemd hosts), stop and disable it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
