#!/usr/bin/env bash
# Side-by-side timing: `vfiotool list --sysfs-root` against `lspci -nnk -A linux-sysfs` on the
# same synthetic sysfs tree (default 1,000 devices in 200 IOMMU groups, written by
# tests/fixtures/host/generate.py). Both read every device's config space and attributes, the
# driver link, and the system's pci.ids. Runs are interleaved; the medians and their ratio are
# printed. Not a pass/fail test; the target is vfiotool <= 0.5 x lspci.
#
# Usage: benches/compare_list.sh [DEVICES] [GROUPS] [RUNS]
set -euo pipefail

devices=${1:-1000}
groups=${2:-200}
runs=${3:-30}
repo=$(cd "$(dirname "$0")/.." && pwd)

command -v lspci >/dev/null || { echo "lspci missing: run tests/install-deps.sh (pciutils)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/vfiotool"

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
python3 "$repo/tests/fixtures/host/generate.py" --bench "$tree" "$devices" "$groups"
sysfs="$tree/sys"

# Both tools must really read the tree: same device count, same first lines.
n_lspci=$(lspci -nn -A linux-sysfs -O "sysfs.path=$sysfs/bus/pci" | wc -l)
n_ours=$("$bin" list --json --sysfs-root "$sysfs" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["devices"]))')
echo "devices read: lspci $n_lspci, vfiotool $n_ours (tree: $devices devices, $groups groups)"
[ "$n_lspci" = "$devices" ] && [ "$n_ours" = "$devices" ] || { echo "a tool did not read the whole tree" >&2; exit 1; }

python3 - "$runs" "$bin" "$sysfs" <<'PY'
import statistics, subprocess, sys, time
runs, binary, sysfs = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cmds = {
    "lspci -nnk": ["lspci", "-nnk", "-A", "linux-sysfs", "-O", "sysfs.path=%s/bus/pci" % sysfs],
    "vfiotool list": [binary, "list", "--sysfs-root", sysfs],
}
times = {k: [] for k in cmds}
for name, cmd in cmds.items():  # warm the page cache
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
for _ in range(runs):
    for name, cmd in cmds.items():
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times[name].append(time.perf_counter() - t)
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k, v in times.items():
    print("%-14s median %7.2f ms  min %7.2f ms  max %7.2f ms  (%d runs)"
          % (k, med[k], min(v) * 1000, max(v) * 1000, len(v)))
ratio = med["vfiotool list"] / med["lspci -nnk"]
print("ratio vfiotool/lspci = %.2f (target <= 0.50)" % ratio)
PY
