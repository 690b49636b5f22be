#!/usr/bin/env bash
# Installs what the test suite needs on a Debian 12 machine (root): QEMU and friends for the
# guest tests, open ROMs (ipxe-qemu, seabios), pci.ids and lspci for the host-view tests, and the
# EDK2 reference (de)compressor from PyPI. Safe to run again: it only installs what is missing.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages=(
  qemu-system-x86 qemu-system-data busybox-static cpio ipxe-qemu seabios
  hwdata pciutils
  ovmf libvirt-clients libxml2-utils
  gcc-12 make binutils
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import uefi_firmware.efi_compressor' 2>/dev/null; then
  echo "install-deps: pip install uefi-firmware"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
  fi
  pip_install=(python3 -m pip install --quiet --disable-pip-version-check 'uefi-firmware==1.16')
  # Debian's own python3 refuses pip installs outside a venv (PEP 668) unless told otherwise.
  "${pip_install[@]}" 2>/dev/null || "${pip_install[@]}" --break-system-packages
fi

# pefile reads the drivers `rom extract` writes (tests/rom_extract_build.rs), beside objdump.
if ! python3 -c 'import pefile' 2>/dev/null; then
  echo "install-deps: pip install pefile"
  pip_install=(python3 -m pip install --quiet --disable-pip-version-check 'pefile==2024.8.26')
  "${pip_install[@]}" 2>/dev/null || "${pip_install[@]}" --break-system-packages
fi
