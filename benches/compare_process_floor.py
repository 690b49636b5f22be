#!/usr/bin/env python3
"""Whole-process `vfiotool rom parse FILE` against the process floor (`/bin/true`), timed the
same way, side by side in one run.

    python3 benches/compare_process_floor.py [--runs N] [--exe PATH]...

By default it times the binary as shipped (packaging/release-build.sh: static on x86-64) and the
plain dynamic `cargo build --release`, so the effect of the static link shows in the same run.

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
    ap.add_argument("--exe", action="append", default=None,
                    help="a vfiotool binary (repeatable; default: the shipped build from "
                         "packaging/release-build.sh and the plain `cargo build --release`)")
    args = ap.parse_args()
    exes = args.exe
    if exes is None:
        shipped = subprocess.run(["bash", "packaging/release-build.sh"], cwd=REPO, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        plain = os.path.join(target, "release", "vfiotool")
        exes = [os.path.join(REPO, shipped)] if os.path.realpath(os.path.join(REPO, shipped)) == os.path.realpath(plain) \
            else [os.path.join(REPO, shipped), plain]
    roms = ["/usr/lib/ipxe/qemu/efi-e1000.rom"] + sorted(glob.glob(os.path.join(REPO, "../shared/real-roms/*.rom")))
    cmds = [("/bin/true", "/bin/true", ["/bin/true"])]
    for i, exe in enumerate(exes):
        # vfiotool's own start-up (clap, allocator, std), with no ROM work: what a parse adds
        # to it is the ROM's part.
        cmds.append((f"{i}:--version", "--version", [exe, "--version"]))
        for r in roms:
            cmds.append((f"{i}:{os.path.basename(r)}", os.path.basename(r), [exe, "rom", "parse", r]))
    devnull = os.open(os.devnull, os.O_WRONLY)
    for _key, _name, argv in cmds[1:]:
        if spawn(argv, devnull)[2] != 0:
            raise SystemExit(f"compare_process_floor: {' '.join(argv)} failed")
    wall = {k: [] for k, _, _ in cmds}
    cpu = {k: [] for k, _, _ in cmds}
    for _ in range(args.runs):
        for key, _name, argv in cmds:
            w, c, _ = spawn(argv, devnull)
            wall[key].append(w)
            cpu[key].append(c)
    base_w = statistics.median(wall["/bin/true"])
    base_c = statistics.median(cpu["/bin/true"])
    print(f"{args.runs} runs, commands interleaved; medians")
    head = f"{'command':<44}{'wall ms':>9}{'ratio':>8}{'cpu ms':>9}{'ratio':>8}"
    for i, exe in enumerate(exes):
        print(f"\n[{i}] {exe}")
        print(head)
        print("-" * len(head))
        for key, name, _argv in cmds:
            if key != "/bin/true" and not key.startswith(f"{i}:"):
                continue
            w, c = statistics.median(wall[key]), statistics.median(cpu[key])
            label = name if key == "/bin/true" else "vfiotool --version" if name == "--version" else f"rom parse {name}"
            print(f"{label:<44}{w * 1e3:>9.3f}{w / base_w:>7.2f}x{c * 1e3:>9.3f}{c / max(base_c, 1e-9):>7.2f}x")


if __name__ == "__main__":
    main()
