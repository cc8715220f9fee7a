#!/usr/bin/env bash
# Ensures the Debian libraries gen3d needs at run time are present:
#   libusb-1.0-0                      open3d imports it
#   libvulkan1 mesa-vulkan-drivers    open3d's offscreen renderer (software, llvmpipe)
# Installs them with apt-get when running as root; otherwise stops and names them.
set -euo pipefail

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

missing=()
have_lib 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
have_lib 'libvulkan.so.1' || missing+=(libvulkan1)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "gen3d: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "gen3d: missing system packages: ${missing[*]}" >&2
  echo "       install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
