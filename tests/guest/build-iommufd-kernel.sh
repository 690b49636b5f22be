#!/usr/bin/env bash
# Builds the guest kernel that has iommufd and the VFIO device cdev (Debian's own kernels build
# neither): Debian's linux-source-6.12, `make tinyconfig` plus the options below, all built in.
# The result (bzImage and its .config) is cached outside the repo, keyed by the source package
# version and this option list, so later runs and CI on the same machine reuse it; the source tree
# (1.8 GB after a build) is removed again. Prints the path of the cached bzImage on its last line.
#
#   bash tests/guest/build-iommufd-kernel.sh        # about 7 minutes on 2 cores the first time
#
# Environment: VFIOTOOL_TEST_CACHE (default /var/cache/vfiotool-tests), JOBS (default nproc).
set -euo pipefail

options=(
  64BIT KERNEL_GZIP PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE SERIAL_8250_PCI BLK_DEV_INITRD
  RD_GZIP DEVTMPFS PROC_FS SYSFS SHMEM TMPFS BINFMT_ELF BINFMT_SCRIPT MULTIUSER FUTEX EPOLL
  POSIX_TIMERS FILE_LOCKING X86_IOPL_IOPERM CPU_SUP_INTEL CPU_SUP_AMD ACPI PCI PCI_MSI
  PCI_MMCONFIG PCI_STUB IOMMU_SUPPORT INTEL_IOMMU IRQ_REMAP IOMMUFD VFIO VFIO_GROUP
  VFIO_CONTAINER VFIO_IOMMU_TYPE1 VFIO_DEVICE_CDEV VFIO_PCI
  # The guest scenarios also read the kernel log with timestamps, and need one ordinary host
  # driver (one that claims DMA ownership, unlike pci-stub) for a group sibling: NVMe.
  PRINTK_TIME BLOCK BLK_DEV_NVME
)

cache=${VFIOTOOL_TEST_CACHE:-/var/cache/vfiotool-tests}
jobs=${JOBS:-$(nproc)}
pkg=linux-source-6.12

need=()
for p in build-essential bc flex bison libelf-dev libssl-dev xz-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "build-iommufd-kernel: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  apt-get update -qq
  version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
fi
[ -n "$version" ] && [ "$version" != "(none)" ] || { echo "build-iommufd-kernel: apt knows no $pkg" >&2; exit 1; }
key=$(printf '%s\n' "$version" "${options[@]}" | sha256sum | cut -c1-12)
out="$cache/iommufd-kernel-${version//[^A-Za-z0-9.+-]/_}-$key"
if [ -s "$out/bzImage" ]; then
  echo "$out/bzImage"
  exit 0
fi

mkdir -p "$cache"
# One build at a time (two test machines, or two test runs, may ask at once): wait for the other
# and use its result.
exec 9>"$cache/.build-iommufd.lock"
flock 9
if [ -s "$out/bzImage" ]; then
  echo "$out/bzImage"
  exit 0
fi
work=$(mktemp -d "$cache/.build-iommufd-XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
(cd "$work" && apt-get download -qq "$pkg=$version" >/dev/null)
dpkg-deb -x "$work"/${pkg}_*.deb "$work/pkg"
tarball=$(find "$work/pkg/usr/src" -maxdepth 1 -name 'linux-source-*.tar.*' | head -n 1)
[ -n "$tarball" ] || { echo "build-iommufd-kernel: no source tarball in $pkg" >&2; exit 1; }
tar -xf "$tarball" -C "$work"
rm -rf "$work/pkg" "$work"/*.deb
src=$(find "$work" -maxdepth 1 -type d -name 'linux-source-*' | head -n 1)
cd "$src"
make -s tinyconfig >/dev/null
for o in "${options[@]}"; do ./scripts/config --enable "$o"; done
# KERNEL_GZIP is one of a choice: tinyconfig picks another, which has to go for it to stay.
for o in KERNEL_BZIP2 KERNEL_LZMA KERNEL_XZ KERNEL_LZO KERNEL_LZ4 KERNEL_ZSTD; do
  ./scripts/config --disable "$o"
done
make -s olddefconfig >/dev/null
missing=()
for o in "${options[@]}"; do grep -q "^CONFIG_$o=y" .config || missing+=("$o"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "build-iommufd-kernel: olddefconfig dropped: ${missing[*]}" >&2
  exit 1
fi
make -s -j"$jobs" bzImage >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; exit 1; }
mkdir -p "$out.tmp"
cp arch/x86/boot/bzImage "$out.tmp/bzImage"
cp .config "$out.tmp/config"
printf '%s\n' "$version" > "$out.tmp/VERSION"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "build-iommufd-kernel: built in $(( $(date +%s) - start )) s" >&2
echo "$out/bzImage"
