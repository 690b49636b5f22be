#!/usr/bin/env python3
"""Throughput of our EFI decompressor against EDK2's C decoder, side by side in one run.

    python3 benches/compare_decompress.py [--reps N] [--rounds R]

Payloads, all compressed once with EDK2's EfiCompress (PyPI uefi-firmware, the same C code as
EDK2's BaseTools): a real EFI driver PE of GOP-driver size (the iPXE driver from
/usr/lib/ipxe/qemu/efi-e1000e.rom, ~170 KB), 128 KiB of random bytes, 1 MiB of repetitive text,
200 KB of word text and 1 MiB of zeros.

Both decoders run on the same compressed buffers, alternating in R rounds of N decodes each:
ours through the release build of examples/decompress_bench.rs (its own timer around each call),
EDK2's through uefi_firmware.efi_compressor.EfiDecompress (Python's perf_counter around each
call). Each side's figure is the median over rounds of the per-round median. The Python call
overhead is measured on a stream of a 1-byte payload and reported; "C net" subtracts it, and the
ratio uses C net (the stricter comparison for us). MB = 10^6 bytes of decompressed output.

Last, examples/lookup_floor.rs times the bare probe loop (refill, 12-bit table probe, shift,
store) on 8-bit codes: the most any one-symbol-per-probe decoder can reach on random data here.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
IPXE_ROM = "/usr/lib/ipxe/qemu/efi-e1000e.rom"


def efi_pe_from_rom(rom):
    """The EFI image (stored uncompressed by iPXE) of an option ROM: walk 512-aligned 55AA headers."""
    at = 0
    while at + 0x1A <= len(rom):
        is_efi = rom[at : at + 2] == b"\x55\xaa" and rom[at + 4 : at + 8] == b"\xf1\x0e\x00\x00"
        size = int.from_bytes(rom[at + 2 : at + 4], "little") * 512 if is_efi else 0
        if is_efi and size:
            start = at + int.from_bytes(rom[at + 0x16 : at + 0x18], "little")
            image = rom[start : at + size]
            if image[:2] == b"MZ":
                return image
        at += size or 512
    sys.exit(f"compare_decompress: no EFI PE image in {IPXE_ROM}")


def payloads():
    rng = random.Random(20261124)
    try:
        with open(IPXE_ROM, "rb") as f:
            pe = efi_pe_from_rom(f.read())
    except OSError as e:
        sys.exit(f"compare_decompress: {e}: run `bash tests/install-deps.sh`")
    words = ("option ROM image EFI driver graphics output protocol VFIO passthrough device vendor "
             "firmware table header checksum length bus slot function IOMMU group kernel").split()
    text = " ".join(rng.choice(words) for _ in range(30000)).encode()[:200_000]
    line = b"PCIR vfio-pci 10de:1b80 GOP driver line "
    rep = b"".join(line + b"%06d\n" % (i // 50) for i in range(26000))[: 1 << 20]
    return [
        ("gop-like-pe", pe),
        ("random-128k", rng.randbytes(128 << 10)),
        ("repetitive-1m", rep),
        ("text-200k", text),
        ("zeros-1m", bytes(1 << 20)),
    ]


def time_c(codec, stream, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        codec.EfiDecompress(stream, len(stream))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=200, help="decodes per round and side (default 200)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = ap.parse_args()
    try:
        import uefi_firmware.efi_compressor as codec
    except ImportError:
        sys.exit("compare_decompress: python module uefi_firmware missing: run `bash tests/install-deps.sh`")

    print("building examples/decompress_bench (release)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "decompress_bench",
                    "--example", "lookup_floor"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    bench = os.path.join(target, "release", "examples", "decompress_bench")

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, data in payloads():
            stream = codec.EfiCompress(data, len(data))
            if codec.EfiDecompress(stream, len(stream)) != data:
                sys.exit(f"compare_decompress: EDK2 does not round-trip {name}")
            path = os.path.join(tmp, name + ".efi")
            with open(path, "wb") as f:
                f.write(stream)
            rows.append((name, data, stream, path))

        tiny = codec.EfiCompress(b"x", 1)
        overhead = statistics.median(time_c(codec, tiny, max(args.reps, 1000)) for _ in range(args.rounds))

        c_rounds = {name: [] for name, *_ in rows}
        ours_rounds = {name: [] for name, *_ in rows}
        for _ in range(args.rounds):
            for name, _data, stream, _path in rows:
                c_rounds[name].append(time_c(codec, stream, args.reps))
            out = subprocess.run([bench, "--reps", str(args.reps)] + [r[3] for r in rows],
                                 check=True, capture_output=True, text=True).stdout
            for line, (name, data, *_rest) in zip(out.strip().splitlines(), rows):
                _path, size, median, _mbs = line.split("\t")
                if int(size) != len(data):
                    sys.exit(f"compare_decompress: ours decoded {name} to {size} bytes, not {len(data)}")
                ours_rounds[name].append(float(median))

    print(f"EDK2 EfiDecompress per-call overhead via Python (1-byte payload): {overhead * 1e6:.2f} us")
    print(f"{args.rounds} rounds x {args.reps} decodes per side; medians; MB = 10^6 output bytes")
    head = f"{'payload':<15}{'orig':>9}{'comp':>9}{'C ms':>9}{'C net ms':>10}{'C MB/s':>9}{'ours ms':>9}{'ours MB/s':>11}{'ours/C':>8}"
    print(head)
    print("-" * len(head))
    ratios = []
    for name, data, stream, _path in rows:
        c = statistics.median(c_rounds[name])
        c_net = max(c - overhead, 1e-12)
        ours = statistics.median(ours_rounds[name])
        ratio = c_net / ours
        ratios.append(ratio)
        print(f"{name:<15}{len(data):>9}{len(stream):>9}{c * 1e3:>9.3f}{c_net * 1e3:>10.3f}"
              f"{len(data) / c_net / 1e6:>9.1f}{ours * 1e3:>9.3f}{len(data) / ours / 1e6:>11.1f}{ratio:>7.2f}x")
    print(f"lowest ratio ours/C (throughput): {min(ratios):.2f}x")

    # The bound on random data: nearly every symbol is an 8-bit literal, and a decoder taking one
    # symbol per table probe cannot beat the probe chain's latency (examples/lookup_floor.rs).
    floor = subprocess.run([os.path.join(target, "release", "examples", "lookup_floor")],
                           check=True, capture_output=True, text=True).stdout.split()[1]
    for name, data, stream, _path in rows:
        if name == "random-128k":
            c_net = max(statistics.median(c_rounds[name]) - overhead, 1e-12)
            best = len(data) * float(floor) * 1e-9
            print(f"one-probe-per-symbol floor here: {float(floor):.3f} ns/symbol; on random-128k "
                  f"that is {best * 1e3:.3f} ms, at most {c_net / best:.2f}x C")


if __name__ == "__main__":
    main()
