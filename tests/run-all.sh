#!/usr/bin/env bash
# The whole test suite, as README.md gives it: installs what the tests need (apt, pip), then runs
# every test, including the QEMU guest tests of the real kernel's VFIO.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
# The .deb: built, installed, checked and removed again (needs root, as the installs above do).
bash packaging/test-deb.sh
# Everything else, the QEMU guest tests included; last, so its summary closes the run.
cargo test --all-targets --no-fail-fast 2>&1
