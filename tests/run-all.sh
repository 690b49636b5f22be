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
# Everything else, the QEMU guest tests included; last, so its summary closes the run.
cargo test --all-targets --no-fail-fast 2>&1
