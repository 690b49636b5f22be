#!/usr/bin/env bash
# Time `vfiotool explain` on big input (release build): a 20 MiB log (only the first 8 MiB are
# read) and 8 MiB of real VFIO error messages (the corpus repeated), 5 runs each; prints the
# wall time and peak RSS of each run.   Usage: bash benches/explain_big.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
line = "[    1.000000] pci 0000:00:01.0: PME# supported from D0 D3hot D3cold and nothing else here\n"
with open(d + "/big.log", "w") as f:
    f.write("vfio 0000:0a:00.0: group 20 is not viable\n")
    f.write(line * (20 * 1024 * 1024 // len(line)))
corpus = open("tests/fixtures/explain/corpus.txt").read()
with open(d + "/corpus8m.log", "w") as f:
    f.write(corpus * ((8 * 1024 * 1024) // len(corpus)))
PY
for f in big.log corpus8m.log; do
  echo "== $f ($(stat -c %s "$tmp/$f") bytes)"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e s  %M KiB" ./target/release/vfiotool explain --json \
      --root tests/fixtures/host/amd-workstation "$tmp/$f" 2>&1 >/dev/null | tail -1
  done
done
