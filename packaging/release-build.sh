#!/usr/bin/env bash
# Builds the release binary as it is shipped (the .deb, the benchmarks) and prints its path.
#
# On x86-64 glibc hosts it is linked statically (`-C target-feature=+crt-static`, a static PIE:
# address randomisation is kept). A vfiotool run is mostly process start-up, and the dynamic
# build spends it loading and relocating libc and libgcc_s: `rom parse` of Debian's
# efi-e1000.rom took 27% longer than with the static build (benches/compare_process_floor.py).
# Static glibc is safe here because vfiotool calls nothing that needs NSS or dlopen
# (getpwnam, getaddrinfo, iconv); the linker would warn if it did, and this script fails then.
#
# crt-static needs an explicit --target (without one, the flag would also reach the proc-macro
# crates, which must stay dynamic), so the binary lands in target/<triple>/release/. Elsewhere
# (aarch64, musl) it is the plain `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
host="$(rustc -vV | sed -n 's/^host: //p')"
if [ "$host" = x86_64-unknown-linux-gnu ] && [ -e /usr/lib/x86_64-linux-gnu/libc.a ]; then
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  if ! RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --target "$host" --quiet 2>"$log"; then
    cat "$log" >&2
    exit 1
  fi
  if grep -q "statically linked applications requires at runtime" "$log"; then
    cat "$log" >&2
    echo "release-build: the static binary calls a glibc function that needs shared libraries" >&2
    exit 1
  fi
  cat "$log" >&2
  echo "$target_dir/$host/release/vfiotool"
else
  cargo build --release --quiet
  echo "$target_dir/release/vfiotool"
fi
