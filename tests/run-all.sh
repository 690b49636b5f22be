#!/usr/bin/env bash
# The whole test suite, as README.md gives it: installs what the tests need (apt, pip), then runs
# every test, including the QEMU guest tests of the real kernel's VFIO.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
# The .deb: built, installed, checked and removed again (needs root, as the installs above do).
bash packaging/test-deb.sh
# The real GPU dumps are validation data beside the project, never in it; say so when absent
# (cargo test hides the tests' own SKIPPED lines when they pass).
if [ ! -d ../shared/real-roms ]; then
  echo "SKIPPED: ../shared/real-roms is absent, so tests/real_roms.rs checks nothing on this machine"
fi
# Everything else, the QEMU guest tests included. Each test binary prints its own "test result"
# line; the last line of the run sums them all up, so the run's closing line is about the whole
# suite and not about whichever binary happened to run last.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result: /{
       for (i = 1; i < NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i
         if ($(i+1) ~ /^failed/) f += $i
         if ($(i+1) ~ /^ignored/) g += $i
       }
       n++
     }
     END {
       printf "%d test binaries; %d tests ignored (opt-in, e.g. benchmarks)\n", n, g
       printf "suite: %d passed, %d failed\n", p, f
     }' "$log"
exit "$status"
