#!/usr/bin/env bash
# Runs each fuzz target for a given number of seconds and prints its execution count.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (default: 60 seconds, every target)
#   RUNS=10000000 fuzz/run.sh 0 TARGET     (until that many executions instead)
#
# The targets are built without a sanitizer (SANITIZER=address to change that): the code they
# reach (rom/, its decoder and encoder) has no `unsafe`, so AddressSanitizer can find nothing
# Rust's own bounds checks do not, and it made rom_extract 30 times slower (184 executions a
# second against 5758 without it, measured on the same corpus). Panics, overflow checks and
# the targets' own assertions abort the run either way; -a turns on debug assertions and
# overflow checks, so an arithmetic overflow is a crash rather than a silent wrap. Comparison
# tracing is off (--no-trace-compares; TRACE_COMPARES=1 turns it on): its hooks took 70% of
# rom_build's time in the encoder's match loop (1375 executions a second against 8959 without
# them), while the magic values it helps a fuzzer guess (55AA, PCIR, 0xEF1, MZ) are already in
# the seeds.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain is stable, so RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass its nightly-only sanitizer flags. Crashes land in fuzz/artifacts/TARGET/;
# the script exits non-zero if any target found one.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(decompress rom_analyze rom_extract rom_build compress_roundtrip)
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

# Seeds from the generated samples (project-made, not third-party firmware). rom_analyze and
# rom_extract start from every sample: without comparison tracing a fuzzer hardly guesses 55AA
# and "PCIR" on its own (rom_analyze reached 63 edges from a corpus that lacked them), so a
# corpus without a sample gets them. rom_build inputs are a flags byte, then parts cut at "|~|":
# here a base ROM and the driver taken out of a sample's EFI image.
for t in rom_analyze rom_extract; do
  mkdir -p "corpus/$t"
  ls "corpus/$t" | grep -q '\.rom$' || cp ../rom-samples/*.rom "corpus/$t/"
done
mkdir -p corpus/rom_build
if [ -z "$(ls -A corpus/rom_build)" ]; then
  python3 - corpus/rom_build <<'PY'
import os, sys
out = sys.argv[1]
base = open("../rom-samples/x86-only.rom", "rb").read()
rom = open("../rom-samples/x86-efi-gop.rom", "rb").read()
at = 0
while at + 0x1A <= len(rom):
    if rom[at:at + 2] == b"\x55\xaa" and rom[at + 4:at + 8] == b"\xf1\x0e\x00\x00":
        size = int.from_bytes(rom[at + 2:at + 4], "little") * 512
        pe = rom[at + int.from_bytes(rom[at + 0x16:at + 0x18], "little"):at + size]
        for flags in (0x08, 0x09, 0x0F, 0x28, 0x02):
            open(os.path.join(out, f"base-efi-{flags:02x}"), "wb").write(bytes([flags]) + base + b"|~|" + pe)
        break
    at += 512
PY
fi

status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  echo "== $t: ${RUNS:+$RUNS runs}${RUNS:-${seconds}s}"
  set +e
  if [ -n "${RUNS:-}" ]; then limit=(-runs="$RUNS"); else limit=(-max_total_time="$seconds"); fi
  if [ -n "${TRACE_COMPARES:-}" ]; then cmp=(); else cmp=(--no-trace-compares); fi
  cargo fuzz run -a -s "${SANITIZER:-none}" "${cmp[@]}" "$t" "corpus/$t" -- "${limit[@]}" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
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
