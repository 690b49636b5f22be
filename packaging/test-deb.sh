#!/usr/bin/env bash
# Builds the .deb, installs it on this machine (root), checks what it installed, and removes
# it again, so the machine is left as it was. Part of tests/run-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if dpkg-query -W -f='${Status}' vfiotool 2>/dev/null | grep -q "install ok installed"; then
  echo "test-deb: vfiotool is already installed as a package; not touching it" >&2
  exit 1
fi
deb=$(bash packaging/build-deb.sh | tail -n 1)
cleanup() { dpkg -r vfiotool >/dev/null 2>&1 || true; }
trap cleanup EXIT
dpkg -i "$deb" >/dev/null
fail=0
check() { if "$@"; then echo "ok: $*"; else echo "FAILED: $*"; fail=1; fi; }
check test -x /usr/bin/vfiotool
check sh -c '/usr/bin/vfiotool --version | grep -q "^vfiotool "'
if [ "$(uname -m)" = x86_64 ]; then
  # The shipped x86-64 binary is a static PIE (packaging/release-build.sh says why).
  check sh -c 'readelf -d /usr/bin/vfiotool | grep -q "no dynamic section\|FLAGS_1.*PIE" && ! readelf -d /usr/bin/vfiotool | grep -q NEEDED'
fi
check sh -c '/usr/bin/vfiotool rom parse rom-samples/x86-efi-gop.rom | grep -q "OVMF (q35)"'
check test -s /usr/share/man/man1/vfiotool.1.gz
check sh -c 'zcat /usr/share/man/man1/vfiotool.1.gz | grep -q "^.TH vfiotool"'
check sh -c 'zcat /usr/share/man/man1/vfiotool-rom-parse.1.gz | grep -q "require\\\\-gop"'
check test -s /usr/share/man/man1/vfiotool-persist.1.gz
check test -s /usr/share/bash-completion/completions/vfiotool
check test -s /usr/share/zsh/vendor-completions/_vfiotool
check test -s /usr/share/fish/vendor_completions.d/vfiotool.fish
check sh -c 'dpkg -L vfiotool | grep -q /usr/share/doc/vfiotool/README.md'
cleanup
check test ! -e /usr/bin/vfiotool
trap - EXIT
if [ "$fail" -ne 0 ]; then echo "deb: 1 failed" >&2; exit 1; fi
echo "deb: package built, installed, checked and removed"
