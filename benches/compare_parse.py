#!/usr/bin/env python3
"""Whole-process `vfiotool rom parse` of a 1 MiB ROM with a compressed EFI image, side by side
with `cat FILE > /dev/null` of the same file, in one run. Runs alternate (parse, cat, parse, ...)
so machine noise hits both alike; medians are reported.

    python3 benches/compare_parse.py [--runs N]

It builds the release binary and generates the ROM with rom-samples/generate.py --big.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    exe = REPO / "target/release/vfiotool"
    with tempfile.TemporaryDirectory() as tmp:
        rom = Path(tmp) / "big.rom"
        subprocess.run([sys.executable, REPO / "rom-samples/generate.py", "--big", rom], check=True)
        check = subprocess.run([exe, "rom", "parse", "--json", rom], capture_output=True, text=True, check=True)
        assert '"uefi_gop":true' in check.stdout, "the bench ROM must decode to a GOP driver"
        parse, cat = [], []
        for _ in range(args.runs):
            parse.append(timed([exe, "rom", "parse", rom]))
            cat.append(timed(["sh", "-c", f"cat '{rom}' > /dev/null"]))
            # `sh -c` costs a process of its own; time it alone to show that part.
        sh_only = [timed(["sh", "-c", "true"]) for _ in range(args.runs)]
        size = rom.stat().st_size
    mp, mc, ms = (statistics.median(x) * 1000 for x in (parse, cat, sh_only))
    print(f"ROM: {size} bytes, {args.runs} runs each, medians")
    print(f"vfiotool rom parse : {mp:7.2f} ms")
    print(f"cat > /dev/null    : {mc:7.2f} ms   (of which sh -c true: {ms:.2f} ms)")
    print(f"ratio parse/cat    : {mp / mc:7.2f}")


if __name__ == "__main__":
    main()
