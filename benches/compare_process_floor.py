#!/usr/bin/env python3
"""Whole-process `vfiotool rom parse FILE` against the process floor (`/bin/true`), timed the
same way, side by side in one run.

    python3 benches/compare_process_floor.py [--runs N] [--exe PATH]

ROMs: Debian's /usr/lib/ipxe/qemu/efi-e1000.rom and every ../shared/real-roms/*.rom (read in
place). Each run spawns the commands in turn (true, parse ROM 1, true, parse ROM 2, ...) with
os.posix_spawn and waits with os.wait4, so each figure is spawn-to-exit wall time plus the child's
user+sys CPU time from the kernel's rusage. Medians over runs; ratio = median / median of
/bin/true. Output goes to /dev/null, as the ROM report costs the same either way.
"""
import argparse
import glob
import os
import statistics
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spawn(argv, devnull):
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t
    return wall, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--exe", default=None, help="the vfiotool binary (default: a fresh release build)")
    args = ap.parse_args()
    exe = args.exe
    if exe is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        exe = os.path.join(target, "release", "vfiotool")
    roms = ["/usr/lib/ipxe/qemu/efi-e1000.rom"] + sorted(glob.glob(os.path.join(REPO, "../shared/real-roms/*.rom")))
    cmds = [("/bin/true", ["/bin/true"])] + [(os.path.basename(r), [exe, "rom", "parse", r]) for r in roms]
    devnull = os.open(os.devnull, os.O_WRONLY)
    for name, argv in cmds[1:]:
        if spawn(argv, devnull)[2] != 0:
            raise SystemExit(f"compare_process_floor: {' '.join(argv)} failed")
    wall = {n: [] for n, _ in cmds}
    cpu = {n: [] for n, _ in cmds}
    for _ in range(args.runs):
        for name, argv in cmds:
            w, c, _ = spawn(argv, devnull)
            wall[name].append(w)
            cpu[name].append(c)
    base_w = statistics.median(wall["/bin/true"])
    base_c = statistics.median(cpu["/bin/true"])
    print(f"{args.runs} runs, commands interleaved; medians; exe {exe}")
    head = f"{'command':<36}{'wall ms':>9}{'ratio':>8}{'cpu ms':>9}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for name, _ in cmds:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        label = name if name == "/bin/true" else f"rom parse {name}"
        print(f"{label:<36}{w * 1e3:>9.3f}{w / base_w:>7.2f}x{c * 1e3:>9.3f}{c / max(base_c, 1e-9):>7.2f}x")


if __name__ == "__main__":
    main()
