//! The QEMU guest tests: the real Linux VFIO stack in a guest with an emulated Intel IOMMU.
//!
//! For each machine configuration (normal; `intel_iommu=off`; interrupt remapping off) this
//! harness builds a static `vfiotool` (separate target dir `target/guest/build`), packs it with
//! busybox, the modules of the Debian kernel (cloud, or generic for the gpu machine), ROM files and the scenario scripts of
//! that machine (`tests/guest/scenarios/MACHINE/*.sh`) into an initramfs, boots it under TCG, and
//! turns the `@@` markers the guest prints on its serial console into one named test result per
//! scenario. A guest that cannot be built or booted fails every test of its machine loudly, with
//! the reason and the end of the serial log; nothing is skipped silently.
//!
//! Run one machine: `cargo test --test guest normal::`. Benchmark (ignored by default):
//! `cargo test --release --test guest -- --ignored bench::`. Logs: `target/guest/MACHINE/serial.log`.
//! Environment: `VFIOTOOL_GUEST_TIMEOUT` (seconds per boot, default 300), `VFIOTOOL_TEST_CACHE`
//! (where the kernel packages are unpacked once, outside the repo; default
//! /var/cache/vfiotool-tests). The module load order comes from each .ko's `depends=`.
//! The `iommufd*` machines boot the 6.12 kernel tests/guest/build-iommufd-kernel.sh builds and
//! caches (about 7 minutes the first time); `VFIOTOOL_IOMMUFD_KERNEL=PATH` names a bzImage instead.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

#[path = "common/backports.rs"]
mod backports;
#[path = "guest/kernel.rs"]
mod kernel;
use kernel::{build_slowremove, cache_dir, guest_kernel, module_order, Flavour};

/// One machine configuration: one boot runs all of its scenarios.
struct Machine {
    name: &'static str,
    /// Kernel command line after `console=ttyS0 panic=-1 loglevel=4 no_timer_check`.
    cmdline: &'static str,
    /// `-device intel-iommu,...` properties (None: no IOMMU device at all).
    iommu: Option<&'static str>,
    /// `-device` arguments; `{rom:NAME}` is replaced by the host path of ROM NAME.
    devices: &'static [&'static str],
    /// Run only with `--ignored`.
    ignored: bool,
    /// Guest memory in MiB.
    memory_mb: u32,
    /// Also pack the host's QEMU (binary, shared libraries, OVMF) so a scenario can start a VM
    /// inside the guest with what `vfiotool config --for qemu` prints.
    with_qemu: bool,
    /// Which Debian kernel the machine boots.
    kernel: Flavour,
    /// Modules to load (by name); their dependencies are found from each .ko's `depends=` and
    /// loaded first. Soft dependencies (a codec driver before the controller) are given in order.
    modules: &'static [&'static str],
    /// Build tests/guest/module (the slowremove driver) against the kernel's headers and pack it
    /// as /lib/modules/extra/slowremove.ko (not loaded by /init: the scenarios load it).
    slowremove: bool,
    /// Extra QEMU arguments (audio backends and the like), `{rom:NAME}` replaced as in devices.
    extra_args: &'static [&'static str],
}

/// The VFIO stack every machine loads.
const VFIO_MODULES: &[&str] = &["vfio", "vfio_iommu_type1", "vfio_virqfd", "vfio-pci"];

/// Device layout (q35, seen in the guest): 00:03.0 edu (sample ROM), 00:04.0 pci-testdev
/// (iPXE ROM), 00:05.0 nvme, 00:06.0 pcie-pci-bridge with 01:01.0 pci-testdev and 01:02.0 nvme
/// behind it (one IOMMU group), 00:07.0 edu with a ROM that has no 55AA, 00:08.0 pci-testdev.
const NORMAL_DEVICES: &[&str] = &[
    "edu,addr=0x3,romfile={rom:sample.rom}",
    "pci-testdev,addr=0x4,romfile={rom:ipxe.rom}",
    "nvme,serial=vt-nvme0,addr=0x5",
    "pcie-pci-bridge,id=br1,addr=0x6",
    "pci-testdev,bus=br1,addr=0x1",
    "nvme,serial=vt-nvme1,bus=br1,addr=0x2",
    "edu,addr=0x7,romfile={rom:bad.rom}",
    "pci-testdev,addr=0x8",
];

const MACHINES: &[Machine] = &[
    Machine {
        name: "normal",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=on"),
        devices: NORMAL_DEVICES,
        ignored: false,
        memory_mb: 512,
        with_qemu: false,
        kernel: Flavour::Cloud,
        modules: VFIO_MODULES,
        slowremove: false,
        extra_args: &[],
    },
    Machine {
        name: "iommu_off",
        cmdline: "intel_iommu=off",
        iommu: Some("intel-iommu,intremap=on"),
        devices: &["edu,addr=0x3", "nvme,serial=vt-nvme0,addr=0x5"],
        ignored: false,
        memory_mb: 512,
        with_qemu: false,
        kernel: Flavour::Cloud,
        modules: VFIO_MODULES,
        slowremove: false,
        extra_args: &[],
    },
    Machine {
        name: "intremap_off",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=off"),
        devices: &["edu,addr=0x3", "nvme,serial=vt-nvme0,addr=0x5"],
        ignored: false,
        memory_mb: 512,
        with_qemu: false,
        kernel: Flavour::Cloud,
        modules: VFIO_MODULES,
        slowremove: false,
        extra_args: &[],
    },
    // The host view (`list`, `groups`, `check`, `capture`): a boot VGA (boot_vga=1, shadowed
    // ROM) at 00:02.0, a pcie-pci-bridge with two devices (one shared group) at 00:06.0, one
    // with a single device (isolated except the bridge) at 00:07.0, nvme at 00:05.0.
    Machine {
        name: "host_view",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=on"),
        devices: &[
            "VGA,addr=0x2",
            "edu,addr=0x3",
            "nvme,serial=hv-nvme0,addr=0x5",
            "pcie-pci-bridge,id=br1,addr=0x6",
            "pci-testdev,bus=br1,addr=0x1",
            "edu,bus=br1,addr=0x2",
            "pcie-pci-bridge,id=br2,addr=0x7",
            "pci-testdev,bus=br2,addr=0x1",
        ],
        ignored: false,
        memory_mb: 512,
        with_qemu: false,
        kernel: Flavour::Cloud,
        modules: VFIO_MODULES,
        slowremove: false,
        extra_args: &[],
    },
    // QEMU inside the guest: the arguments `config --for qemu` prints start a VM that opens the
    // device's VFIO group on the real kernel.
    Machine {
        name: "qemu_vm",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=on"),
        devices: &["edu,addr=0x3,romfile={rom:sample.rom}"],
        ignored: false,
        memory_mb: 1024,
        with_qemu: true,
        kernel: Flavour::Cloud,
        modules: VFIO_MODULES,
        slowremove: false,
        extra_args: &[],
    },
    // A GPU-like card on Debian's generic kernel: 01:00.0 a bochs-display (bochs DRM driver,
    // /dev/fb0) with a rom-samples ROM and 01:00.1 an ich9-intel-hda (snd_hda_intel) in one slot
    // behind a PCIe root port (00:07.0), one IOMMU group; 00:03.0 an edu for the slowremove driver
    // (a remove() that blocks); 00:04.0 an edu on no driver; behind a pcie-pci-bridge (00:08.0,
    // one group): a two-function edu card at 02:01 and an e1000 (a host driver) at 02:02.0.
    Machine {
        name: "gpu",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=on"),
        devices: &[
            "edu,addr=0x3",
            "edu,addr=0x4",
            "pcie-root-port,id=rpg,chassis=7,slot=7,addr=0x7",
            "bochs-display,bus=rpg,addr=00.0,multifunction=on,romfile={rom:sample.rom}",
            "ich9-intel-hda,bus=rpg,addr=00.1",
            "hda-duplex,audiodev=snd0",
            "pcie-pci-bridge,id=br1,addr=0x8",
            "edu,bus=br1,addr=01.0,multifunction=on",
            "edu,bus=br1,addr=01.1",
            "e1000,bus=br1,addr=02.0,romfile=",
        ],
        ignored: false,
        memory_mb: 512,
        with_qemu: false,
        kernel: Flavour::Generic,
        modules: &[
            "vfio",
            "vfio_iommu_type1",
            "vfio_virqfd",
            "vfio-pci",
            "bochs",
            "snd-hda-codec-generic",
            "snd-hda-intel",
            "e1000",
        ],
        slowremove: true,
        extra_args: &["-audiodev", "none,id=snd0"],
    },
    // iommufd and the VFIO device cdev on a 6.12 kernel built here (tests/guest/build-iommufd-kernel.sh,
    // cached; no modules). 00:03.0 edu (lone group, sample ROM), 00:05.0 nvme, and behind a
    // pcie-pci-bridge (00:06.0, one group) 01:01.0 edu and 01:02.0 nvme (a sibling on a host driver).
    Machine {
        name: "iommufd",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=on,caching-mode=on"),
        devices: &[
            "edu,addr=0x3,romfile={rom:sample.rom}",
            "nvme,serial=fd-nvme0,addr=0x5",
            "pcie-pci-bridge,id=br1,addr=0x6",
            "edu,bus=br1,addr=0x1",
            "nvme,serial=fd-nvme1,bus=br1,addr=0x2",
        ],
        ignored: false,
        memory_mb: 1024,
        // QEMU 10 from bookworm-backports: starts a VM through `config --for qemu --iommufd`.
        with_qemu: true,
        kernel: Flavour::Iommufd,
        modules: &[],
        slowremove: false,
        extra_args: &[],
    },
    // The same kernel without interrupt remapping: the cdev bind is refused (EPERM, silently).
    Machine {
        name: "iommufd_intremap_off",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=off,caching-mode=on"),
        devices: &["edu,addr=0x3"],
        ignored: false,
        memory_mb: 512,
        with_qemu: false,
        kernel: Flavour::Iommufd,
        modules: &[],
        slowremove: false,
        extra_args: &[],
    },
    Machine {
        name: "bench",
        cmdline: "intel_iommu=on",
        iommu: Some("intel-iommu,intremap=on"),
        devices: &["edu,addr=0x3", "nvme,serial=vt-nvme0,addr=0x5"],
        ignored: true,
        memory_mb: 512,
        with_qemu: false,
        kernel: Flavour::Cloud,
        modules: VFIO_MODULES,
        slowremove: false,
        extra_args: &[],
    },
];

/// What the guest said about one scenario.
#[derive(Debug, Clone)]
struct ScenarioResult {
    status: Option<i32>,
    fail: Vec<String>,
    log: Vec<String>,
}

/// The outcome of one boot: per-scenario results, or why the boot failed as a whole.
type BootOutcome = Result<BTreeMap<String, ScenarioResult>, String>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn work_dir() -> PathBuf {
    repo().join("target").join("guest")
}

fn main() {
    let args = Arguments::from_args();
    let boots: Arc<Vec<OnceLock<BootOutcome>>> = Arc::new(MACHINES.iter().map(|_| OnceLock::new()).collect());
    let mut trials = Vec::new();
    for (mi, machine) in MACHINES.iter().enumerate() {
        let scenarios = match scenario_names(machine.name) {
            Ok(s) => s,
            Err(e) => {
                trials.push(Trial::test(format!("{}::scenarios", machine.name), move || {
                    Err(e.into())
                }));
                continue;
            }
        };
        for name in scenarios {
            let boots = Arc::clone(&boots);
            let test_name = format!("{}::{}", machine.name, name);
            let trial = Trial::test(test_name, move || {
                let outcome = boots[mi].get_or_init(|| boot_machine(&MACHINES[mi]));
                check_scenario(outcome, &name)
            })
            .with_ignored_flag(machine.ignored);
            trials.push(trial);
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn scenario_names(machine: &str) -> Result<Vec<String>, String> {
    let dir = repo().join("tests/guest/scenarios").join(machine);
    let mut names = Vec::new();
    let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|x| x == "sh") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(format!("{}: no scenarios", dir.display()));
    }
    Ok(names)
}

fn check_scenario(outcome: &BootOutcome, name: &str) -> Result<(), Failed> {
    let results = outcome.as_ref().map_err(|e| Failed::from(e.as_str()))?;
    let r = results
        .get(name)
        .ok_or_else(|| Failed::from(format!("the guest never started scenario {name}")))?;
    let log = r.log.join("\n");
    match r.status {
        Some(0) if r.fail.is_empty() => Ok(()),
        Some(code) => Err(format!(
            "scenario {name} ended with status {code}{}: {}\n--- guest log ---\n{log}",
            if code == 124 || code == 143 {
                " (timed out in the guest)"
            } else {
                ""
            },
            if r.fail.is_empty() {
                "no @@FAIL message".to_string()
            } else {
                r.fail.join("; ")
            },
        )
        .into()),
        None => {
            Err(format!("scenario {name} never ended (guest died in it)\n--- guest log ---\n{log}").into())
        }
    }
}

/// Boots are serialized: TCG guests on two shared cores time out when they compete.
static BOOT_LOCK: Mutex<()> = Mutex::new(());

fn boot_machine(machine: &Machine) -> BootOutcome {
    let _guard = BOOT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let prep = shared_prep()?;
    let boot = machine_kernel(machine)?;
    let dir = work_dir().join(machine.name);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let initrd = pack_initramfs(machine, prep, &boot, &dir)?;
    let log_path = dir.join("serial.log");
    let log = run_qemu(machine, prep, &boot, &initrd, &log_path)?;
    parse_log(&log).map_err(|e| {
        format!(
            "{e}\n--- last lines of {} ---\n{}",
            log_path.display(),
            tail(&log, 60)
        )
    })
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Everything the boots share: tools, the static binary, the ROM files.
struct Prep {
    binary: PathBuf,
    busybox: PathBuf,
    roms: Vec<(&'static str, PathBuf)>,
}

static PREP: OnceLock<Result<Prep, String>> = OnceLock::new();

fn shared_prep() -> Result<&'static Prep, String> {
    PREP.get_or_init(|| {
        ensure_tools()?;
        let binary = build_static_binary()?;
        let roms = rom_files()?;
        Ok(Prep {
            binary,
            busybox: PathBuf::from("/bin/busybox"),
            roms,
        })
    })
    .as_ref()
    .map_err(|e| e.clone())
}

/// What one machine boots: its kernel, its modules in load order, and the slowremove module.
struct Boot {
    vmlinuz: PathBuf,
    modules: Vec<PathBuf>,
    extra_modules: Vec<PathBuf>,
}

fn machine_kernel(machine: &Machine) -> Result<Boot, String> {
    let started = Instant::now();
    let k = guest_kernel(machine.kernel, machine.slowremove)?;
    let modules = module_order(&k.moddir, machine.modules)?;
    let mut extra_modules = Vec::new();
    if machine.slowremove {
        let headers = k.headers.as_ref().ok_or("no kernel headers")?;
        extra_modules.push(build_slowremove(headers)?);
    }
    eprintln!(
        "guest {}: kernel {}, {} modules{}, ready in {:.1} s (cache {})",
        machine.name,
        k.release,
        modules.len(),
        if machine.slowremove {
            " + slowremove.ko"
        } else {
            ""
        },
        started.elapsed().as_secs_f64(),
        cache_dir().display()
    );
    Ok(Boot {
        vmlinuz: k.vmlinuz,
        modules,
        extra_modules,
    })
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A 64-bit ELF without a PT_INTERP program header (no dynamic loader needed).
fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize);
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| s.try_into().ok())
            .map(|a: [u8; 8]| u64::from_le_bytes(a) as usize)
    };
    if !b.starts_with(b"\x7fELF") || b.get(4) != Some(&2) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum.min(256)).all(|i| {
        let o = phoff.saturating_add(i.saturating_mul(phentsize));
        b.get(o..o + 4) != Some(&3u32.to_le_bytes()[..])
    })
}

/// qemu, a static busybox, cpio and gzip; installed through tests/install-deps.sh when missing.
fn ensure_tools() -> Result<(), String> {
    let have = |p: &str| Path::new(p).exists();
    let static_busybox = || {
        fs::read("/bin/busybox")
            .map(|b| is_static_elf(&b))
            .unwrap_or(false)
    };
    let ok = || {
        have("/usr/bin/qemu-system-x86_64")
            && have("/usr/bin/cpio")
            && static_busybox()
            && have("/usr/lib/ipxe/qemu/efi-e1000.rom")
            && have("/usr/bin/gcc-12")
            && have("/usr/bin/make")
    };
    if !ok() {
        run(
            Command::new("bash").arg(repo().join("tests/install-deps.sh")),
            "installing the guest test dependencies",
        )?;
    }
    if !ok() {
        return Err(
            "qemu-system-x86_64, cpio, a static /bin/busybox (busybox-static), \
             /usr/lib/ipxe/qemu/efi-e1000.rom (ipxe-qemu), gcc-12 or make is still missing after \
             tests/install-deps.sh; the guest tests cannot run"
                .into(),
        );
    }
    Ok(())
}

/// `RUSTFLAGS="-C target-feature=+crt-static" cargo build --target x86_64-unknown-linux-gnu`
/// plus `-C relocation-model=static`: a static-PIE binary relocates itself at every start, which
/// under TCG costs ~35 ms per process (60 ms start instead of 23 ms, measured in the bench guest).
/// in target/guest/build, so it does not fight the normal build.
fn build_static_binary() -> Result<PathBuf, String> {
    let target_dir = work_dir().join("build");
    let release = cfg!(not(debug_assertions));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--bin",
        "vfiotool",
        "--target",
        "x86_64-unknown-linux-gnu",
    ])
    .arg("--manifest-path")
    .arg(repo().join("Cargo.toml"))
    .env("CARGO_TARGET_DIR", &target_dir)
    .env(
        "RUSTFLAGS",
        "-C target-feature=+crt-static -C relocation-model=static",
    )
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("CARGO_BUILD_RUSTFLAGS");
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd, "building the static vfiotool for the guest")?;
    let bin = target_dir
        .join("x86_64-unknown-linux-gnu")
        .join(if release { "release" } else { "debug" })
        .join("vfiotool");
    let bytes = fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    if !is_static_elf(&bytes) {
        return Err(format!(
            "{} is dynamically linked; the guest has no libc",
            bin.display()
        ));
    }
    Ok(bin)
}

/// ROMs given to QEMU with romfile= and copied into the guest as /roms/NAME for comparison.
fn rom_files() -> Result<Vec<(&'static str, PathBuf)>, String> {
    let sample = repo().join("rom-samples/x86-efi-gop.rom");
    if !sample.exists() {
        return Err(format!("{} is missing", sample.display()));
    }
    let ipxe = PathBuf::from("/usr/lib/ipxe/qemu/efi-e1000.rom");
    // A ROM BAR whose content has no 55AA signature: the kernel refuses to read it (EIO).
    let bad = work_dir().join("bad.rom");
    let mut bytes = vec![0u8; 4096];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    fs::create_dir_all(work_dir()).map_err(|e| e.to_string())?;
    fs::write(&bad, &bytes).map_err(|e| format!("{}: {e}", bad.display()))?;
    Ok(vec![("sample.rom", sample), ("ipxe.rom", ipxe), ("bad.rom", bad)])
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

fn pack_initramfs(machine: &Machine, prep: &Prep, boot: &Boot, dir: &Path) -> Result<PathBuf, String> {
    let root = dir.join("root");
    let _ = fs::remove_dir_all(&root);
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "lib/modules",
        "guest",
        "scenarios",
        "roms",
        "etc",
    ] {
        fs::create_dir_all(root.join(d)).map_err(|e| format!("{}: {e}", root.join(d).display()))?;
    }
    let src = repo().join("tests/guest");
    copy(&prep.busybox, &root.join("bin/busybox"))?;
    copy(&prep.binary, &root.join("bin/vfiotool"))?;
    copy(&src.join("init"), &root.join("init"))?;
    copy(&src.join("lib.sh"), &root.join("guest/lib.sh"))?;
    // /init loads the modules in the order of lib/modules/order (dependencies first).
    let mut order = String::new();
    for m in &boot.modules {
        let name = m.file_name().ok_or("module without a name")?;
        copy(m, &root.join("lib/modules").join(name))?;
        order.push_str(&format!("{}\n", name.to_string_lossy()));
    }
    fs::write(root.join("lib/modules/order"), order).map_err(|e| e.to_string())?;
    if !boot.extra_modules.is_empty() {
        fs::create_dir_all(root.join("lib/modules/extra")).map_err(|e| e.to_string())?;
    }
    for m in &boot.extra_modules {
        let name = m.file_name().ok_or("module without a name")?;
        copy(m, &root.join("lib/modules/extra").join(name))?;
    }
    for (name, path) in &prep.roms {
        copy(path, &root.join("roms").join(name))?;
    }
    // Device names, as on a real host (hwdata, from tests/install-deps.sh); without it the
    // guest shows numeric IDs, which the scenarios accept too.
    if machine.with_qemu {
        // The iommufd machine runs QEMU 10 (bookworm-backports): 7.2 has no iommufd backend.
        let from = if machine.kernel == Flavour::Iommufd {
            kernel::backports_qemu()?
        } else {
            PathBuf::from("/")
        };
        copy_qemu(&root, &from)?;
    }
    let pci_ids = Path::new("/usr/share/misc/pci.ids");
    if pci_ids.is_file() {
        fs::create_dir_all(root.join("usr/share/misc")).map_err(|e| e.to_string())?;
        copy(pci_ids, &root.join("usr/share/misc/pci.ids"))?;
    }
    for name in scenario_names(machine.name)? {
        let f = format!("{name}.sh");
        copy(
            &src.join("scenarios").join(machine.name).join(&f),
            &root.join("scenarios").join(&f),
        )?;
    }
    let initrd = dir.join("initrd.cpio.gz");
    run(
        Command::new("sh")
            .arg("-c")
            .arg("cd \"$1\" && find . | sort | cpio -o -H newc --quiet | gzip -1 > \"$2\"")
            .arg("pack")
            .arg(&root)
            .arg(&initrd),
        "packing the initramfs",
    )?;
    Ok(initrd)
}

/// The host's qemu-system-x86_64 with every shared library `ldd` names (the loader included) and
/// Debian's OVMF, at their own paths below `root`.
fn copy_qemu(root: &Path, from: &Path) -> Result<(), String> {
    let qemu_path = from.join("usr/bin/qemu-system-x86_64");
    let qemu = qemu_path.as_path();
    let ldd = Command::new("ldd")
        .arg(qemu)
        .output()
        .map_err(|e| format!("ldd {}: {e}", qemu.display()))?;
    if !ldd.status.success() {
        return Err(format!(
            "ldd {} failed: {}",
            qemu.display(),
            String::from_utf8_lossy(&ldd.stderr)
        ));
    }
    let mut files: Vec<PathBuf> = vec![
        PathBuf::from("/usr/share/OVMF/OVMF_CODE_4M.fd"),
        PathBuf::from("/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ];
    // Debian's 7.2 builds the TCG accelerator as a loadable module (it needs only libc); 10.0
    // has it built in.
    let tcg = from.join("usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so");
    if tcg.is_file() {
        files.push(tcg);
    }
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    // The binary goes to /usr/bin in the guest whichever root it came from.
    copy(qemu, &root.join("usr/bin/qemu-system-x86_64"))?;
    for f in files {
        let rel = f
            .strip_prefix(from)
            .or_else(|_| f.strip_prefix("/"))
            .map_err(|e| e.to_string())?;
        let dest = root.join(rel);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        // Through symlinks: the guest gets the file itself under the name QEMU looks for.
        copy(
            &fs::canonicalize(&f)
                .map_err(|e| format!("{}: {e} (install qemu-system-x86 and ovmf)", f.display()))?,
            &dest,
        )?;
    }
    Ok(())
}

fn run_qemu(
    machine: &Machine,
    prep: &Prep,
    boot: &Boot,
    initrd: &Path,
    log_path: &Path,
) -> Result<String, String> {
    let timeout = std::env::var("VFIOTOOL_GUEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300u64);
    let mut cmd = Command::new("qemu-system-x86_64");
    // TCG only: KVM opens fine on these machines but the guest kernel hangs under it.
    cmd.args([
        "-machine",
        "q35,accel=tcg",
        "-m",
        &machine.memory_mb.to_string(),
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-monitor",
        "none",
    ]);
    if let Some(iommu) = machine.iommu {
        cmd.args(["-device", iommu]);
    }
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    cmd.arg("-kernel").arg(&boot.vmlinuz).arg("-initrd").arg(initrd);
    cmd.arg("-append")
        // no_timer_check: on a loaded host the TCG guest's early IO-APIC timer test can miss its
        // window and panic ("timer doesn't work through Interrupt-remapped IO-APIC"), seen here.
        .arg(format!(
            "console=ttyS0 panic=-1 loglevel=4 no_timer_check {}",
            machine.cmdline
        ));
    let with_roms = |arg: &str| {
        let mut d = arg.to_string();
        for (name, path) in &prep.roms {
            d = d.replace(&format!("{{rom:{name}}}"), &path.display().to_string());
        }
        d
    };
    for dev in machine.devices {
        cmd.args(["-device", &with_roms(dev)]);
    }
    for a in machine.extra_args {
        cmd.arg(with_roms(a));
    }
    let log = fs::File::create(log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(err_log);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > Duration::from_secs(timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for qemu: {e}")),
        }
    };
    let mut text = String::new();
    fs::File::open(log_path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "guest {}: {:.1} s, serial log {}",
        machine.name,
        elapsed,
        log_path.display()
    );
    match status {
        None => Err(format!(
            "guest {} did not finish within {timeout} s (host-side timeout; QEMU killed)\n--- last lines of {} ---\n{}",
            machine.name,
            log_path.display(),
            tail(&text, 60)
        )),
        Some(_) => {
            // Where the time went: boot (guest uptime at /init), scenarios (at @@DONE).
            for line in text.lines().filter(|l| {
                l.starts_with("@@BENCH") || l.starts_with("@@BOOT") || l.starts_with("@@DONE")
            }) {
                eprintln!("{line}");
            }
            Ok(text)
        }
    }
}

fn parse_log(log: &str) -> Result<BTreeMap<String, ScenarioResult>, String> {
    if !log.contains("@@BOOT") {
        return Err("the guest never reached /init (kernel did not boot, or the initramfs is broken)".into());
    }
    let mut results = BTreeMap::new();
    let mut current: Option<(String, ScenarioResult)> = None;
    for raw in log.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(name) = line.strip_prefix("@@BEGIN ") {
            if let Some((n, r)) = current.take() {
                results.insert(n, r);
            }
            current = Some((
                name.trim().to_string(),
                ScenarioResult {
                    status: None,
                    fail: Vec::new(),
                    log: Vec::new(),
                },
            ));
        } else if let Some(rest) = line.strip_prefix("@@END ") {
            if let Some((n, mut r)) = current.take() {
                r.status = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .or(Some(-1));
                results.insert(n, r);
            }
        } else if let Some((_, r)) = current.as_mut() {
            if let Some(msg) = line.strip_prefix("@@FAIL ") {
                r.fail.push(msg.to_string());
            }
            r.log.push(line.to_string());
        }
    }
    if let Some((n, r)) = current.take() {
        results.insert(n, r);
    }
    if !log.contains("@@DONE") {
        // Scenarios that ended keep their results; the rest report the crash.
        let last = results
            .iter()
            .find(|(_, r)| r.status.is_none())
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        eprintln!("guest did not reach @@DONE (crash or panic during {last:?})");
    }
    Ok(results)
}
