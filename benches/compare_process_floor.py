#!/usr/bin/env python3
"""Whole-process `vfiotool rom parse FILE` against the process floor (`/bin/true`), timed the
same way, side by side in one run.

    python3 benches/compare_process_floor.py [--runs N] [--exe PATH]...

Also timed: a static C program that only reads the ROM into fresh memory and exits (the part of
the cost any ROM tool pays, built with `cc -static` when a compiler is there).

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


READER_C = r"""
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (argc < 2 || fd < 0 || fstat(fd, &st) != 0) return 1;
    char *buf = malloc(st.st_size + 1);
    ssize_t got = 0, n;
    while (buf && (n = read(fd, buf + got, st.st_size + 1 - got)) > 0) got += n;
    return got == st.st_size ? 0 : 1;
}
"""


def build_reader():
    """The static C file reader, built into target/ (None when there is no C compiler)."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    out = os.path.join(target, "bench-read-file")
    src = out + ".c"
    os.makedirs(target, exist_ok=True)
    with open(src, "w") as f:
        f.write(READER_C)
    try:
        subprocess.run(["cc", "-O2", "-static", "-o", out, src], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        print("compare_process_floor: no static C compiler; the read-the-file rows are left out")
        return None
    return out


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
    reader = build_reader()
    if reader:
        # What any tool must pay on top of /bin/true to look at the ROM at all: a static C
        # program that reads the whole file into fresh memory and exits.
        for r in roms:
            cmds.append((f"c:{os.path.basename(r)}", f"read {os.path.basename(r)}", [reader, r]))
    for i, exe in enumerate(exes):
        # vfiotool's own start-up (clap, allocator, std), with no ROM work: what a parse adds
        # to it is the ROM's part.
        cmds.append((f"{i}:--version", "vfiotool --version", [exe, "--version"]))
        for r in roms:
            cmds.append((f"{i}:{os.path.basename(r)}", f"rom parse {os.path.basename(r)}", [exe, "rom", "parse", r]))
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

    def table(title, prefix):
        """The /bin/true row, then the rows whose key starts with `prefix`."""
        print(f"\n{title}")
        print(head)
        print("-" * len(head))
        for key, label, _argv in cmds:
            if key == "/bin/true" or key.startswith(prefix):
                w, c = statistics.median(wall[key]), statistics.median(cpu[key])
                print(f"{label:<44}{w * 1e3:>9.3f}{w / base_w:>7.2f}x{c * 1e3:>9.3f}{c / max(base_c, 1e-9):>7.2f}x")

    if reader:
        table(f"[c] {reader}: read the file, exit", "c:")
    for i, exe in enumerate(exes):
        table(f"[{i}] {exe}", f"{i}:")


if __name__ == "__main__":
    main()
