#!/usr/bin/env bash
# Runs each fuzz target for a given number of seconds and prints its execution count.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (default: 60 seconds, targets decompress rom_analyze)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain is stable, so RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass its nightly-only sanitizer flags. Crashes land in fuzz/artifacts/TARGET/;
# the script exits non-zero if any target found one.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(decompress rom_analyze)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 2
fi

# Seed the decompress corpus with real streams when the EDK2 reference is there (optional).
seed_dir=corpus/decompress
mkdir -p "$seed_dir"
if [ -z "$(ls -A "$seed_dir")" ] && python3 -c 'import uefi_firmware.efi_compressor' 2>/dev/null; then
  python3 - "$seed_dir" <<'PY'
import os, sys, uefi_firmware.efi_compressor as c
out = sys.argv[1]
samples = [b"", b"a", b"hello hello hello world" * 20, bytes(2000), os.urandom(300),
           bytes(range(256)) * 8, b"MZ\x90\x00" + os.urandom(64) * 20]
for i, s in enumerate(samples):
    # The target reads its first byte as the variant: even = EFI, odd = Tiano.
    open(os.path.join(out, f"efi-{i}"), "wb").write(b"\x00" + c.EfiCompress(s, len(s)))
    open(os.path.join(out, f"tiano-{i}"), "wb").write(b"\x01" + c.TianoCompress(s, len(s)))
PY
fi

status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  echo "== $t: ${seconds}s"
  set +e
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
  grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -1 || true
  crashes="$(ls "artifacts/$t" 2>/dev/null | grep -c -E '^(crash|oom|timeout|leak)-' || true)"
  echo "$t: executions=${execs:-unknown} exit=$rc crash_artifacts=$crashes"
  if [ "$rc" -ne 0 ]; then
    status=1
    tail -40 "$log"
  fi
  rm -f "$log"
done
exit "$status"
