#!/usr/bin/env bash
# Installs what the build needs besides Rust on Debian/Ubuntu: the libclang that the RocksDB
# bindings' bindgen loads, clang's builtin headers, and Debian's RocksDB library (linking it
# saves a ten-minute C++ build). Does nothing when they are already there.
set -euo pipefail
packages=(libclang1-14 libclang-common-14-dev librocksdb-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install-deps: not a Debian-like system; install ${missing[*]} (or equivalents) by hand" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
