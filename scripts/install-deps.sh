#!/usr/bin/env bash
# Installs the Debian packages Prism builds and tests with. Idempotent: a
# machine that already has everything costs one dpkg query and no network.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libh2o-dev libuv1-dev libcurl4-openssl-dev libssl-dev
  libcjson-dev libsimdjson-dev libyaml-dev libcmocka-dev libmimalloc-dev
  nodejs npm ca-certificates curl openssl valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# Node and npm may come from outside Debian (a newer build already on PATH):
# keep those rather than pulling Debian's older ones over them.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  keep=()
  for p in "${missing[@]}"; do
    [[ "$p" == nodejs || "$p" == npm ]] || keep+=("$p")
  done
  missing=("${keep[@]+"${keep[@]}"}")
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
