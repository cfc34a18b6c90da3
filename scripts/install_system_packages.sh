#!/usr/bin/env bash
# Install the Debian 12 packages that building Caffe and the venv need. As root, with apt-get;
# otherwise print the exact command to run and stop. Installed packages are skipped, so a
# second run does nothing.
set -euo pipefail
PACKAGES=(build-essential patch ca-certificates python3-dev python3-venv
  libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-regex-dev
  libboost-python-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
  libhdf5-dev libopenblas-dev)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "[setup] missing Debian packages: ${missing[*]}" >&2
  echo "[setup] install them with:" >&2
  echo "    sudo apt-get install -y ${missing[*]}" >&2
  echo "[setup] error: not root, so not installing them myself; run the command above, then retry" >&2
  exit 1
fi
echo "[setup] installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
