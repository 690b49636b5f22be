#!/usr/bin/env python3
"""Our EFI encoder against EDK2's EfiCompress, side by side in one run: size and speed.

    python3 benches/compare_compress.py [--reps N] [--rounds R]

Payloads: the EFI driver PE of every Debian iPXE ROM (/usr/lib/ipxe/qemu/efi-*.rom), the EFI
drivers of ../shared/real-roms/*.rom (read in place, decompressed by EDK2), 128 KiB of
random bytes, 200 KB of word text, 1 MiB of repetitive text, 1 MiB of zeros. For each, both
encoders run R alternating rounds of N calls: ours through the release build of
examples/compress_bench.rs (its own timer around each call), EDK2's through
uefi_firmware.efi_compressor.EfiCompress (perf_counter around each call). Figures are medians
over rounds of per-round medians. Every stream of ours is decoded by EDK2's EfiDecompress and
must give the payload back, or the script fails.
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches"))
from compare_decompress import efi_pe_from_rom, payloads as decompress_payloads  # noqa: E402


def payloads(codec):
    out = []
    for rom in sorted(glob.glob("/usr/lib/ipxe/qemu/efi-*.rom")):
        with open(rom, "rb") as f:
            out.append((os.path.basename(rom)[4:-4] + ".efi", efi_pe_from_rom(f.read())))
    if not out:
        sys.exit("compare_compress: no /usr/lib/ipxe/qemu/efi-*.rom: run `bash tests/install-deps.sh`")
    out += real_drivers(codec)
    out += [p for p in decompress_payloads() if p[0] != "gop-like-pe"]
    return out


def real_drivers(codec):
    """The EFI drivers of ../shared/real-roms/*.rom (read in place), decompressed by EDK2."""
    out = []
    for rom_path in sorted(glob.glob(os.path.join(ROOT, "../shared/real-roms/*.rom"))):
        with open(rom_path, "rb") as f:
            rom = f.read()
        at = 0
        while at + 0x1A <= len(rom):
            is_efi = rom[at:at + 2] == b"\x55\xaa" and rom[at + 4:at + 8] == b"\xf1\x0e\x00\x00"
            size = int.from_bytes(rom[at + 2:at + 4], "little") * 512 if is_efi else 0
            if is_efi and size and at + size <= len(rom):
                payload = rom[at + int.from_bytes(rom[at + 0x16:at + 0x18], "little"):at + size]
                kind = int.from_bytes(rom[at + 0x0C:at + 0x0E], "little")
                try:
                    pe = codec.EfiDecompress(payload, len(payload)) if kind == 1 else payload
                except Exception:  # a driver EDK2 cannot read is not a benchmark payload
                    pe = b""
                if pe[:2] == b"MZ":
                    name = os.path.basename(rom_path)[:-4]
                    out.append((f"{name[:12]}@{at:x}.efi", pe))
            at += size or 512
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    try:
        import uefi_firmware.efi_compressor as codec
    except ImportError:
        sys.exit("compare_compress: python module uefi_firmware missing: run `bash tests/install-deps.sh`")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "compress_bench"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    bench = os.path.join(target, "release", "examples", "compress_bench")
    rows = payloads(codec)
    c_t = {n: [] for n, _ in rows}
    o_t = {n: [] for n, _ in rows}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data in rows:
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            paths.append(p)
        for r in range(args.rounds):
            for name, data in rows:
                times = []
                for _ in range(args.reps):
                    t = time.perf_counter()
                    s = codec.EfiCompress(data, len(data))
                    times.append(time.perf_counter() - t)
                c_t[name].append(statistics.median(times))
                sizes.setdefault(name, [len(s), 0])
            out = subprocess.run([bench, "--reps", str(args.reps), "--out", tmp] + paths,
                                 check=True, capture_output=True, text=True).stdout
            for line, (name, data) in zip(out.strip().splitlines(), rows):
                _p, _orig, comp, med = line.split("\t")
                o_t[name].append(float(med))
                sizes[name][1] = int(comp)
        for name, data in rows:
            with open(os.path.join(tmp, name + ".ours"), "rb") as f:
                ours = f.read()
            if codec.EfiDecompress(ours, len(ours)) != data:
                sys.exit(f"compare_compress: EDK2 EfiDecompress does not give back {name} from our stream")
    print(f"{args.rounds} rounds x {args.reps} calls per side; medians; every stream of ours decoded by EDK2")
    head = f"{'payload':<24}{'orig':>9}{'EDK2':>9}{'ours':>9}{'size':>8}{'EDK2 ms':>9}{'ours ms':>9}{'speed':>8}"
    print(head)
    print("-" * len(head))
    worst_size, worst_speed = 0.0, 1e9
    for name, data in rows:
        e, o = sizes[name]
        ce, co = statistics.median(c_t[name]), statistics.median(o_t[name])
        worst_size = max(worst_size, o / max(e, 1))
        worst_speed = min(worst_speed, ce / co)
        print(f"{name:<24}{len(data):>9}{e:>9}{o:>9}{o / max(e, 1):>7.3f}x{ce * 1e3:>9.2f}{co * 1e3:>9.2f}{ce / co:>7.2f}x")
    print(f"largest size ours/EDK2: {worst_size:.3f}x; lowest speed EDK2 time/ours: {worst_speed:.2f}x")


if __name__ == "__main__":
    main()
