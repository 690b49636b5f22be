//! `vfiotool check`: is this host ready for VFIO passthrough, and what exactly to change.
//!
//! Every check reads through a [`HostRoot`], so it runs the same on a captured tree. A check is
//! `ok`, `warn` (works, but something is risky or suboptimal) or `fail` (passthrough will not
//! work). Only `needed` checks can fail; the report is `ready` when none failed. Check ids are
//! stable (docs/host.md): `kvm`, `iommu`, `cmdline`, `interrupt_remapping`,
//! `unsafe_interrupts`, `vfio_modules`, `vfio_pci_options`, `blacklist`, `acs_override`,
//! `framebuffer`, `boot_vga`, `bootloader`.
//!
//! The definitive interrupt-remapping test (`VFIO_SET_IOMMU` on a group bound to vfio-pci) needs
//! ioctls, which live in `vfio/`: the caller passes it in as an [`IrProbe`] function.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::host::bootloader::{self, BootLoader};
use crate::host::HostRoot;
use crate::pci::device::Device;
use crate::pci::groups::{self, Groups};
use crate::pci::sysfs;
use crate::vfio::ioctl::{VfioOps, GROUP_FLAGS_VIABLE, TYPE1V2_IOMMU, TYPE1_IOMMU};

pub const SCHEMA: &str = "vfiotool.check/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    /// What to do on this host (one step per line), `null` when nothing is to be done.
    pub fix: Option<String>,
    /// A failure here means passthrough cannot work (sets `ready` to false).
    pub needed: bool,
}

/// The whole `vfiotool.check/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub schema: &'static str,
    /// No needed check failed.
    pub ready: bool,
    pub kernel_release: Option<String>,
    pub cpu_vendor: Option<String>,
    pub bootloader: BootLoader,
    pub checks: Vec<Check>,
}

/// The outcome of the definitive interrupt-remapping test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IrProbe {
    /// `VFIO_SET_IOMMU` succeeded on this group.
    Passed { group: u32 },
    /// `VFIO_SET_IOMMU` (or an earlier step) was refused on this group.
    Refused { group: u32, error: String },
    /// Not run, and why.
    NotTested(String),
}

/// The test a caller can plug in: given the host's groups, try `VFIO_SET_IOMMU` on one.
pub type ProbeFn<'a> = &'a dyn Fn(&Groups) -> IrProbe;

/// The definitive interrupt-remapping test: on the first group whose endpoints are all on
/// vfio-pci, open the container and the group under `dev_vfio` (`/dev/vfio`), attach the group and
/// call `VFIO_SET_IOMMU` (TYPE1v2 when offered, else TYPE1). It never opens a device fd, so no
/// device is reset; the fds close (and the container is released) when this returns.
pub fn probe_set_iommu<V: VfioOps>(ops: &V, dev_vfio: &std::path::Path, groups: &Groups) -> IrProbe {
    let candidate = groups.groups.iter().find(|g| {
        let mut endpoints = g.endpoints().peekable();
        endpoints.peek().is_some() && g.endpoints().all(|d| d.driver.as_deref() == Some("vfio-pci"))
    });
    let Some(g) = candidate else {
        return IrProbe::NotTested("no group bound to vfio-pci".into());
    };
    let group = g.group;
    let container = match ops.open(&dev_vfio.join("vfio")) {
        Ok(c) => c,
        Err(e) => return IrProbe::NotTested(format!("{}: {e}", dev_vfio.join("vfio").display())),
    };
    let group_path = dev_vfio.join(group.to_string());
    let gfd = match ops.open(&group_path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
            return IrProbe::NotTested(format!("group {group} is in use (a VM holds it)"))
        }
        Err(e) => return IrProbe::NotTested(format!("{}: {e}", group_path.display())),
    };
    match ops.group_status(&gfd) {
        Ok(flags) if flags & GROUP_FLAGS_VIABLE == 0 => {
            return IrProbe::NotTested(format!("group {group} is not viable"))
        }
        Ok(_) => {}
        Err(e) => return IrProbe::NotTested(format!("group {group}: VFIO_GROUP_GET_STATUS: {e}")),
    }
    if let Err(e) = ops.set_container(&gfd, &container) {
        return IrProbe::Refused {
            group,
            error: format!("VFIO_GROUP_SET_CONTAINER: {e}"),
        };
    }
    let iommu_type = if ops.check_extension(&container, TYPE1V2_IOMMU).unwrap_or(false) {
        TYPE1V2_IOMMU
    } else {
        TYPE1_IOMMU
    };
    match ops.set_iommu(&container, iommu_type) {
        Ok(()) => IrProbe::Passed { group },
        Err(e) => IrProbe::Refused {
            group,
            error: format!("VFIO_SET_IOMMU: {e}"),
        },
    }
}

fn ok(id: &'static str, needed: bool, message: impl Into<String>) -> Check {
    Check {
        id,
        status: Status::Ok,
        message: message.into(),
        fix: None,
        needed,
    }
}

fn warn(id: &'static str, needed: bool, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id,
        status: Status::Warn,
        message: message.into(),
        fix: Some(fix.into()),
        needed,
    }
}

fn fail(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id,
        status: Status::Fail,
        message: message.into(),
        fix: Some(fix.into()),
        needed: true,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cpu {
    Intel,
    Amd,
    Other,
}

/// A module's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModState {
    /// `/sys/module/<name>` exists (loaded, or built in with parameters).
    Loaded,
    /// Listed in `modules.builtin`.
    BuiltIn,
    /// Listed in `modules.dep`: `modprobe` can load it.
    Loadable,
    /// Not found anywhere.
    Missing,
    /// Not loaded, and the kernel's module lists are not available to tell more.
    Unknown,
}

/// A line of `/etc/modprobe.d/*.conf`, with its file.
#[derive(Debug, Clone)]
struct ConfLine {
    file: String,
    words: Vec<String>,
}

/// Everything the checks look at, read once.
struct Facts {
    cpu: Cpu,
    cpu_vendor: Option<String>,
    flags: Vec<String>,
    cmdline: Vec<String>,
    release: Option<String>,
    version: Option<(u32, u32)>,
    iommu_units: Vec<String>,
    groups: Groups,
    group_count: usize,
    devices_error: Option<String>,
    interrupts: Option<String>,
    iomem: Option<String>,
    allow_unsafe: Option<bool>,
    modprobe: Vec<ConfLine>,
    boot: BootLoader,
}

fn norm(module: &str) -> String {
    module.replace('-', "_")
}

/// `6.1.0-27-amd64` -> (6, 1).
fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn read_modprobe(root: &HostRoot) -> Vec<ConfLine> {
    let mut out = Vec::new();
    for dir in ["etc/modprobe.d", "usr/lib/modprobe.d", "lib/modprobe.d"] {
        let names = sysfs::dir_names(&root.path(dir)).unwrap_or_default();
        for name in names.iter().filter(|n| n.ends_with(".conf")) {
            let rel = format!("{dir}/{name}");
            let Some(text) = root.read_file(&rel).ok().flatten() else {
                continue;
            };
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default().trim();
                let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
                if !words.is_empty() {
                    out.push(ConfLine {
                        file: format!("/{rel}"),
                        words,
                    });
                }
            }
        }
    }
    out
}

fn gather(root: &HostRoot) -> Facts {
    let cpuinfo = root.read_proc("cpuinfo").ok().flatten().unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let cpu_vendor = field("vendor_id");
    let cpu = match cpu_vendor.as_deref() {
        Some("GenuineIntel") => Cpu::Intel,
        Some("AuthenticAMD") | Some("HygonGenuine") => Cpu::Amd,
        _ => Cpu::Other,
    };
    let flags = field("flags")
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let cmdline = root
        .read_proc("cmdline")
        .ok()
        .flatten()
        .map(|c| c.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let release = root.kernel_release();
    let version = release.as_deref().and_then(parse_version);
    let iommu_units = sysfs::dir_names(&root.sysfs.class_iommu_dir()).unwrap_or_default();
    let group_count = groups::group_numbers(&root.sysfs).map(|g| g.len()).unwrap_or(0);
    let (groups, devices_error) = match Groups::read(&root.sysfs) {
        Ok(g) => (g, None),
        Err(e) => (Groups::from_devices(Vec::new()), Some(e.to_string())),
    };
    let allow_unsafe = root
        .sysfs
        .join("module/vfio_iommu_type1/parameters/allow_unsafe_interrupts")
        .to_str()
        .and_then(|p| sysfs::read_text(std::path::Path::new(p)).ok().flatten())
        .map(|v| v == "Y" || v == "1");
    Facts {
        cpu,
        cpu_vendor,
        flags,
        cmdline,
        release,
        version,
        iommu_units,
        groups,
        group_count,
        devices_error,
        interrupts: root.read_proc("interrupts").ok().flatten(),
        iomem: root.read_proc("iomem").ok().flatten(),
        allow_unsafe,
        modprobe: read_modprobe(root),
        boot: bootloader::detect(root),
    }
}

impl Facts {
    fn devices(&self) -> impl Iterator<Item = &Device> {
        self.groups
            .groups
            .iter()
            .flat_map(|g| g.devices.iter())
            .chain(self.groups.ungrouped.iter())
    }

    fn has_arg(&self, arg: &str) -> bool {
        self.cmdline.iter().any(|a| a == arg)
    }

    /// The value of the last `key=` argument.
    fn arg_value(&self, key: &str) -> Option<&str> {
        self.cmdline
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    }

    /// The argument that turns the IOMMU on: by the IOMMU units present (`dmar*` Intel VT-d,
    /// `ivhd*` AMD-Vi), else by the CPU vendor.
    fn iommu_on_arg(&self) -> &'static str {
        if self.iommu_units.iter().any(|u| u.starts_with("dmar")) {
            return "intel_iommu=on";
        }
        if self.iommu_units.iter().any(|u| u.starts_with("ivhd")) {
            return "amd_iommu=on";
        }
        match self.cpu {
            Cpu::Amd => "amd_iommu=on",
            _ => "intel_iommu=on",
        }
    }

    fn iommu_active(&self) -> bool {
        !self.iommu_units.is_empty() && self.group_count > 0
    }

    /// The GPU drivers the boot GPU's vendor uses.
    fn boot_gpus(&self) -> Vec<&Device> {
        self.devices().filter(|d| d.boot_vga == Some(true)).collect()
    }
}

fn module_state(root: &HostRoot, name: &str) -> ModState {
    if root.sysfs.module_dir(name).exists() {
        return ModState::Loaded;
    }
    let Some(dir) = root.modules_dir() else {
        return ModState::Unknown;
    };
    let matches = |text: &str| {
        text.lines().any(|l| {
            let path = l.split(':').next().unwrap_or_default();
            let file = path.rsplit('/').next().unwrap_or_default();
            let stem = file.split(".ko").next().unwrap_or_default();
            file.contains(".ko") && norm(stem) == name
        })
    };
    let read = |f: &str| sysfs::read_bytes(&dir.join(f), 64 * 1024 * 1024).ok().flatten();
    if read("modules.builtin").is_some_and(|b| matches(&String::from_utf8_lossy(&b))) {
        return ModState::BuiltIn;
    }
    match read("modules.dep") {
        Some(b) if matches(&String::from_utf8_lossy(&b)) => ModState::Loadable,
        Some(_) => ModState::Missing,
        None => ModState::Unknown,
    }
}

/// Run every check; no definitive interrupt-remapping test.
pub fn run(root: &HostRoot) -> CheckReport {
    run_with(root, None)
}

/// Run every check; `probe`, when given, runs the definitive interrupt-remapping test.
pub fn run_with(root: &HostRoot, probe: Option<ProbeFn>) -> CheckReport {
    let f = gather(root);
    let ir_probe = match probe {
        Some(p) if f.iommu_active() => p(&f.groups),
        Some(_) => IrProbe::NotTested("no IOMMU groups".into()),
        None => IrProbe::NotTested(if root.is_live() {
            "no group bound to vfio-pci".into()
        } else {
            "a captured tree cannot be probed".into()
        }),
    };
    let checks = vec![
        check_kvm(root, &f),
        check_iommu(root, &f),
        check_cmdline(&f),
        check_interrupt_remapping(root, &f, &ir_probe),
        check_unsafe_interrupts(&f),
        check_vfio_modules(root, &f),
        check_vfio_pci_options(&f),
        check_blacklist(&f),
        check_acs_override(&f),
        check_framebuffer(root, &f),
        check_boot_vga(&f),
        check_bootloader(&f),
    ];
    let ready = !checks.iter().any(|c| c.status == Status::Fail);
    CheckReport {
        schema: SCHEMA,
        ready,
        kernel_release: f.release.clone(),
        cpu_vendor: f.cpu_vendor.clone(),
        bootloader: f.boot.clone(),
        checks,
    }
}

fn check_kvm(root: &HostRoot, f: &Facts) -> Check {
    let (flag, firmware, module) = match f.cpu {
        Cpu::Amd => ("svm", "AMD SVM (AMD-V)", "kvm_amd"),
        _ => ("vmx", "Intel VT-x (VMX)", "kvm_intel"),
    };
    let has_flag = f.flags.iter().any(|x| x == "vmx" || x == "svm");
    let dev_kvm = root.path("dev/kvm").exists();
    if f.flags.is_empty() {
        return warn(
            "kvm",
            true,
            "no CPU flags in /proc/cpuinfo: cannot tell whether the CPU has virtualization",
            "run vfiotool check on the host itself (not a container), or capture /proc/cpuinfo",
        );
    }
    let hyp = if f.flags.iter().any(|x| x == "hypervisor") {
        " (this host is itself a VM: enable nested virtualization on its host)"
    } else {
        ""
    };
    match (has_flag, dev_kvm) {
        (true, true) => ok(
            "kvm",
            true,
            format!("CPU virtualization ({flag}) and /dev/kvm present"),
        ),
        (true, false) => fail(
            "kvm",
            format!("CPU has {flag} but /dev/kvm is missing"),
            format!("modprobe {module}   (persist: echo {module} > /etc/modules-load.d/kvm.conf)"),
        ),
        (false, _) => fail(
            "kvm",
            format!("no vmx/svm flag in /proc/cpuinfo: CPU virtualization is off or absent{hyp}"),
            format!("enable {firmware} in the firmware (BIOS/UEFI) setup, then reboot"),
        ),
    }
}

fn check_iommu(root: &HostRoot, f: &Facts) -> Check {
    let firmware = match f.cpu {
        Cpu::Amd => "AMD-Vi / IOMMU (often \"SVM\" and \"IOMMU\" in AMD CBS/NBIO)",
        _ => "Intel VT-d",
    };
    let acpi_table = match f.cpu {
        Cpu::Amd => "IVRS",
        _ => "DMAR",
    };
    if f.iommu_active() {
        let mut units = f.iommu_units.clone();
        let more = units.len().saturating_sub(4);
        units.truncate(4);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return ok(
            "iommu",
            true,
            format!(
                "enabled: {} IOMMU unit(s) ({}{more}), {} groups",
                f.iommu_units.len(),
                units.join(", "),
                f.group_count
            ),
        );
    }
    let table = root.sysfs.join("firmware/acpi/tables").join(acpi_table);
    let table_note = if root.sysfs.join("firmware/acpi/tables").exists() && !table.exists() {
        format!(" and the firmware has no ACPI {acpi_table} table")
    } else {
        String::new()
    };
    let disabled = ["intel_iommu=off", "amd_iommu=off", "iommu=off"]
        .into_iter()
        .find(|a| f.has_arg(a));
    let fix = match disabled {
        Some(arg) => f.boot.fix(&[f.iommu_on_arg()], &[arg]),
        None if !table_note.is_empty() => {
            format!("enable {firmware} in the firmware (BIOS/UEFI) setup, then reboot")
        }
        None => format!(
            "enable {firmware} in the firmware setup if it is off, and\n{}",
            f.boot.fix(&[f.iommu_on_arg(), "iommu=pt"], &[])
        ),
    };
    if f.iommu_units.is_empty() {
        fail(
            "iommu",
            format!("the IOMMU is off: /sys/class/iommu is empty{table_note}"),
            fix,
        )
    } else {
        fail(
            "iommu",
            format!(
                "{} IOMMU unit(s) but no IOMMU groups under /sys/kernel/iommu_groups",
                f.iommu_units.len()
            ),
            fix,
        )
    }
}

fn check_cmdline(f: &Facts) -> Check {
    let want = f.iommu_on_arg();
    let off = ["intel_iommu=off", "amd_iommu=off", "iommu=off"]
        .into_iter()
        .find(|a| f.has_arg(a));
    let on = f.has_arg(want);
    let pt = f.arg_value("iommu") == Some("pt");
    if f.cmdline.is_empty() {
        return warn(
            "cmdline",
            true,
            "/proc/cmdline is empty or missing",
            "capture /proc/cmdline with the tree (vfiotool capture does)",
        );
    }
    if let Some(arg) = off {
        return fail(
            "cmdline",
            format!("{arg} on the kernel command line turns the IOMMU off"),
            f.boot.fix(&[want], &[arg]),
        );
    }
    let pt_note = if pt {
        "iommu=pt set"
    } else {
        "iommu=pt not set (optional: host devices skip IOMMU translation)"
    };
    match (on, f.iommu_active()) {
        (true, _) => ok("cmdline", true, format!("{want} set; {pt_note}")),
        (false, true) => ok(
            "cmdline",
            true,
            format!("{want} not set but the kernel enabled the IOMMU by default; {pt_note}"),
        ),
        (false, false) => {
            let mut add = vec![want];
            if !pt {
                add.push("iommu=pt");
            }
            fail(
                "cmdline",
                format!("{want} missing from /proc/cmdline and the IOMMU is off"),
                f.boot.fix(&add, &[]),
            )
        }
    }
}

/// Intel DMAR units whose extended capability has the IR bit (3): (with IR, total read).
fn intel_ir_support(root: &HostRoot, f: &Facts) -> (usize, usize) {
    let mut with_ir = 0;
    let mut total = 0;
    for unit in f.iommu_units.iter().filter(|u| u.starts_with("dmar")) {
        let path = root.sysfs.class_iommu_dir().join(unit).join("intel-iommu/ecap");
        if let Some(v) = sysfs::read_text(&path)
            .ok()
            .flatten()
            .as_deref()
            .and_then(parse_hex64)
        {
            total += 1;
            if v & (1 << 3) != 0 {
                with_ir += 1;
            }
        }
    }
    (with_ir, total)
}

fn parse_hex64(s: &str) -> Option<u64> {
    let t = s.trim();
    u64::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
}

/// Interrupt controller names in /proc/interrupts that say remapping is on (`IR-PCI-MSI`, ...).
fn ir_chips(interrupts: &str) -> Vec<String> {
    let mut chips: Vec<String> = interrupts
        .split_whitespace()
        .filter(|w| w.starts_with("IR-"))
        .map(|w| {
            // IR-PCI-MSI-0000:00:1f.2 (older kernels glue the device name on): keep the chip part.
            let mut parts: Vec<&str> = w.split('-').collect();
            parts.retain(|p| !p.contains(':'));
            parts.join("-")
        })
        .collect();
    chips.sort();
    chips.dedup();
    chips
}

fn check_interrupt_remapping(root: &HostRoot, f: &Facts, probe: &IrProbe) -> Check {
    let id = "interrupt_remapping";
    let probe_note = match probe {
        IrProbe::Passed { group } => format!("VFIO_SET_IOMMU succeeded on group {group}"),
        IrProbe::Refused { group, error } => format!("VFIO_SET_IOMMU refused on group {group}: {error}"),
        IrProbe::NotTested(why) => format!("definitive VFIO_SET_IOMMU test not tested: {why}"),
    };
    let unsafe_fix = "or, knowing the risk (a guest can forge interrupts to the host), \
                      echo 'options vfio_iommu_type1 allow_unsafe_interrupts=1' > /etc/modprobe.d/vfio-unsafe.conf";
    if let IrProbe::Passed { .. } = probe {
        return ok(id, true, format!("working: {probe_note}"));
    }
    if !f.iommu_active() {
        return fail(
            id,
            format!("no IOMMU, so no interrupt remapping ({probe_note})"),
            "turn the IOMMU on first (see the iommu check)",
        );
    }
    let chips = f.interrupts.as_deref().map(ir_chips);
    let (with_ir, total) = intel_ir_support(root, f);
    let hw = if total > 0 {
        format!("; ecap IR bit set on {with_ir} of {total} DMAR unit(s)")
    } else {
        String::new()
    };
    if let IrProbe::Refused { .. } = probe {
        return fail(
            id,
            format!("{probe_note}{hw}"),
            format!("enable interrupt remapping (x2APIC / VT-d in the firmware setup), {unsafe_fix}"),
        );
    }
    match chips {
        Some(c) if !c.is_empty() => ok(
            id,
            true,
            format!("enabled ({} in /proc/interrupts){hw}; {probe_note}", c.join(", ")),
        ),
        Some(_) => {
            let disabled_by = ["intremap=off", "nointremap"]
                .into_iter()
                .find(|a| f.has_arg(a))
                .or_else(|| {
                    f.arg_value("intel_iommu")
                        .filter(|v| v.contains("irqremap"))
                        .map(|_| "intel_iommu=...irqremap")
                });
            let why = if let Some(arg) = disabled_by {
                format!("{arg} on the kernel command line disables it")
            } else if total > 0 && with_ir == 0 {
                format!(
                    "the IOMMU hardware does not support it (ecap IR bit clear on all {total} DMAR units)"
                )
            } else {
                "no IR- interrupt chips in /proc/interrupts".to_string()
            };
            // Once allow_unsafe_interrupts is set, suggesting it again helps nobody.
            let tail = if f.allow_unsafe == Some(true) {
                ""
            } else {
                unsafe_fix
            };
            let fix = match disabled_by {
                Some(arg) => format!("{}\n{tail}", f.boot.fix(&[], &[arg]))
                    .trim_end()
                    .to_string(),
                None => format!("enable interrupt remapping (x2APIC / VT-d) in the firmware setup {tail}")
                    .trim_end()
                    .to_string(),
            };
            if f.allow_unsafe == Some(true) {
                warn(
                    id,
                    true,
                    format!("not available ({why}); VFIO works only because allow_unsafe_interrupts is set; {probe_note}"),
                    fix,
                )
            } else {
                fail(
                    id,
                    format!("not available: {why}; VFIO_SET_IOMMU will fail with EPERM; {probe_note}"),
                    fix,
                )
            }
        }
        None => warn(
            id,
            true,
            format!("/proc/interrupts is missing: cannot tell{hw}; {probe_note}"),
            "run on the live host, or capture /proc/interrupts",
        ),
    }
}

fn check_unsafe_interrupts(f: &Facts) -> Check {
    let id = "unsafe_interrupts";
    let in_conf = f.modprobe.iter().find(|l| {
        l.words.first().map(String::as_str) == Some("options")
            && l.words.get(1).map(|m| norm(m)) == Some("vfio_iommu_type1".into())
            && l.words
                .iter()
                .any(|w| w == "allow_unsafe_interrupts=1" || w == "allow_unsafe_interrupts=Y")
    });
    let on_cmdline = f
        .arg_value("vfio_iommu_type1.allow_unsafe_interrupts")
        .is_some_and(|v| v == "1" || v == "Y");
    let risk = "a guest can send arbitrary MSIs to the host (DMA-forged interrupts): \
                only acceptable when interrupt remapping is truly unavailable and the guest is trusted";
    let remove = match (in_conf, on_cmdline) {
        (Some(l), _) => format!(
            "remove allow_unsafe_interrupts=1 from {} once interrupt remapping works",
            l.file
        ),
        (None, true) => f.boot.fix(&[], &["vfio_iommu_type1.allow_unsafe_interrupts=1"]),
        (None, false) => {
            "echo 0 > /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts (it was set at runtime)"
                .into()
        }
    };
    if f.allow_unsafe == Some(true) || in_conf.is_some() || on_cmdline {
        let source = match (f.allow_unsafe, in_conf) {
            (Some(true), _) => "is set (Y)".to_string(),
            (_, Some(l)) => format!("is configured in {}", l.file),
            _ => "is on the kernel command line".to_string(),
        };
        warn(
            id,
            false,
            format!("allow_unsafe_interrupts {source}: {risk}"),
            remove,
        )
    } else {
        ok(id, false, "allow_unsafe_interrupts is not set")
    }
}

fn check_vfio_modules(root: &HostRoot, f: &Facts) -> Check {
    let id = "vfio_modules";
    let mods = ["vfio", "vfio_iommu_type1", "vfio_pci"];
    let states: Vec<(&str, ModState)> = mods.iter().map(|m| (*m, module_state(root, m))).collect();
    let describe = |s: ModState| match s {
        ModState::Loaded => "loaded",
        ModState::BuiltIn => "built in",
        ModState::Loadable => "loadable",
        ModState::Missing => "missing",
        ModState::Unknown => "not loaded",
    };
    let summary: Vec<String> = states
        .iter()
        .map(|(m, s)| format!("{m} {}", describe(*s)))
        .collect();
    let summary = summary.join(", ");
    let missing: Vec<&str> = states
        .iter()
        .filter(|(_, s)| *s == ModState::Missing)
        .map(|(m, _)| *m)
        .collect();
    if !missing.is_empty() {
        return fail(
            id,
            format!("{summary}: the kernel has no {}", missing.join(", ")),
            "install this kernel's full module package (Ubuntu: linux-modules-extra-$(uname -r); \
             Debian/Proxmox/Fedora ship vfio in the kernel package), or build with CONFIG_VFIO_PCI",
        );
    }
    // vfio_virqfd: merged into vfio in 6.2; configs that still list it make modprobe fail.
    let new_kernel = f.version.is_some_and(|v| v >= (6, 2));
    let lists = [
        "etc/modules",
        "etc/initramfs-tools/modules",
        "etc/mkinitcpio.conf",
        "etc/modules-load.d/vfio.conf",
        "etc/modules-load.d/modules.conf",
        "etc/dracut.conf.d/vfio.conf",
    ];
    let virqfd = lists.iter().find(|rel| {
        root.read_file(rel).ok().flatten().is_some_and(|t| {
            t.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("vfio_virqfd"))
        })
    });
    if let (true, Some(rel)) = (new_kernel, virqfd) {
        return warn(
            id,
            true,
            format!("{summary}; /{rel} lists vfio_virqfd, which was merged into vfio in 6.2"),
            format!("remove vfio_virqfd from /{rel} (and rebuild the initramfs: update-initramfs -u)"),
        );
    }
    let unknown = states.iter().any(|(_, s)| *s == ModState::Unknown);
    if unknown {
        return warn(
            id,
            true,
            format!("{summary}; cannot tell whether the rest can be loaded (no /lib/modules/<release>)"),
            "modprobe vfio-pci   (it pulls in vfio and vfio_iommu_type1)",
        );
    }
    let virqfd_note = if new_kernel {
        "; vfio_virqfd not needed (merged into vfio since 6.2)"
    } else {
        ""
    };
    let all_loaded = states
        .iter()
        .all(|(_, s)| matches!(s, ModState::Loaded | ModState::BuiltIn));
    let mut c = ok(id, true, format!("{summary}{virqfd_note}"));
    if !all_loaded {
        c.fix = Some("nothing needed: vfiotool bind loads them; to load now: modprobe vfio-pci".into());
    }
    c
}

/// `vendor:device[:subvendor:subdevice[:class:mask]]` -> (vendor, device); `ffffffff` = any.
fn parse_id(id: &str) -> Option<(Option<u16>, Option<u16>)> {
    let mut it = id.split(':');
    let num = |s: &str| -> Option<Option<u16>> {
        let v = u32::from_str_radix(s.trim(), 16).ok()?;
        Some(if v == 0xffff_ffff {
            None
        } else {
            u16::try_from(v).ok()
        })
    };
    Some((num(it.next()?)?, num(it.next()?)?))
}

fn check_vfio_pci_options(f: &Facts) -> Check {
    let id = "vfio_pci_options";
    let mut ids: Vec<(String, String)> = Vec::new(); // (id, source)
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for l in &f.modprobe {
        let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["options", m, rest @ ..] if norm(m) == "vfio_pci" => {
                for opt in rest {
                    if let Some(v) = opt.strip_prefix("ids=") {
                        ids.extend(
                            v.split(',')
                                .filter(|s| !s.is_empty())
                                .map(|s| (s.to_string(), l.file.clone())),
                        );
                    } else {
                        notes.push(format!("{opt} ({})", l.file));
                    }
                }
            }
            ["softdep", m, rest @ ..] if rest.iter().any(|x| norm(x) == "vfio_pci") => {
                notes.push(format!("softdep {m} pre: vfio-pci ({})", l.file));
            }
            _ => {}
        }
    }
    if let Some(v) = f
        .arg_value("vfio-pci.ids")
        .or_else(|| f.arg_value("vfio_pci.ids"))
    {
        ids.extend(
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| (s.to_string(), "/proc/cmdline".into())),
        );
    }
    let devices: Vec<&Device> = f.devices().collect();
    for (raw, source) in &ids {
        let Some((v, d)) = parse_id(raw) else {
            problems.push(format!("ids entry {raw:?} in {source} is not vendor:device"));
            continue;
        };
        let hits: Vec<&&Device> = devices
            .iter()
            .filter(|x| v.is_none_or(|v| v == x.vendor_id) && d.is_none_or(|d| d == x.device_id))
            .collect();
        match hits.len() {
            0 => problems.push(format!("ids={raw} ({source}) matches no device on this host")),
            1 => {
                let dev = hits[0];
                if dev.boot_vga == Some(true) {
                    problems.push(format!(
                        "ids={raw} ({source}) claims the boot GPU {}",
                        dev.address
                    ));
                }
                if let Some(drv) = dev.driver.as_deref().filter(|d| *d != "vfio-pci") {
                    problems.push(format!(
                        "ids={raw} ({source}) did not take {}: it is on {drv}",
                        dev.address
                    ));
                    fixes.push(format!(
                        "load vfio-pci before {drv}: add 'softdep {drv} pre: vfio-pci' to /etc/modprobe.d/vfio.conf and rebuild the initramfs"
                    ));
                }
            }
            _ => {
                let addrs: Vec<String> = hits.iter().map(|h| h.address.to_string()).collect();
                problems.push(format!(
                    "ids={raw} ({source}) claims {} identical devices: {}",
                    hits.len(),
                    addrs.join(", ")
                ));
                fixes.push(
                    "to pass only one of identical devices, drop it from ids= and bind by address: vfiotool bind <address>"
                        .into(),
                );
            }
        }
    }
    let ids_text: Vec<String> = ids.iter().map(|(i, _)| i.clone()).collect();
    let mut message = if ids.is_empty() {
        "no boot-time vfio-pci ids= (runtime binding with vfiotool bind needs none)".to_string()
    } else {
        format!("vfio-pci ids={}", ids_text.join(","))
    };
    if !notes.is_empty() {
        message.push_str(&format!("; {}", notes.join("; ")));
    }
    if problems.is_empty() {
        ok(id, false, message)
    } else {
        fixes.dedup();
        if fixes.is_empty() {
            fixes.push("correct the ids= list in the file named above".into());
        }
        warn(
            id,
            false,
            format!("{message}; {}", problems.join("; ")),
            fixes.join("\n"),
        )
    }
}

const GPU_DRIVERS: [&str; 9] = [
    "nouveau",
    "nvidia",
    "nvidia_drm",
    "nvidiafb",
    "amdgpu",
    "radeon",
    "i915",
    "xe",
    "snd_hda_intel",
];

fn vendor_drivers(vendor: u16) -> &'static [&'static str] {
    match vendor {
        0x10de => &["nouveau", "nvidia", "nvidia_drm", "nvidiafb"],
        0x1002 => &["amdgpu", "radeon"],
        0x8086 => &["i915", "xe"],
        _ => &[],
    }
}

fn check_blacklist(f: &Facts) -> Check {
    let id = "blacklist";
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for l in &f.modprobe {
        let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
        let m = match w.as_slice() {
            ["blacklist", m, ..] => Some(norm(m)),
            ["install", m, cmd, ..] if cmd.ends_with("/false") || cmd.ends_with("/true") => Some(norm(m)),
            _ => None,
        };
        if let Some(m) = m.filter(|m| GPU_DRIVERS.contains(&m.as_str())) {
            found.entry(m).or_insert_with(|| l.file.clone());
        }
    }
    if let Some(v) = f.arg_value("modprobe.blacklist") {
        for m in v
            .split(',')
            .map(norm)
            .filter(|m| GPU_DRIVERS.contains(&m.as_str()))
        {
            found.entry(m).or_insert_with(|| "/proc/cmdline".into());
        }
    }
    if found.is_empty() {
        return ok(id, false, "no GPU driver blacklisted");
    }
    let list: Vec<String> = found.iter().map(|(m, file)| format!("{m} ({file})")).collect();
    let boot_hit: Vec<String> = f
        .boot_gpus()
        .iter()
        .flat_map(|d| vendor_drivers(d.vendor_id).iter().map(move |m| (d, *m)))
        .filter(|(_, m)| found.contains_key(*m))
        .map(|(d, m)| format!("{m} also drives the boot GPU {}", d.address))
        .collect();
    if boot_hit.is_empty() {
        ok(id, false, format!("blacklisted GPU drivers: {}", list.join(", ")))
    } else {
        warn(
            id,
            false,
            format!(
                "blacklisted GPU drivers: {}; {}: the host console stays on the firmware framebuffer",
                list.join(", "),
                boot_hit.join("; ")
            ),
            "prefer binding by address (vfiotool bind) over blacklisting a driver the host GPU needs",
        )
    }
}

fn check_acs_override(f: &Facts) -> Check {
    let id = "acs_override";
    match f.cmdline.iter().find(|a| a.starts_with("pcie_acs_override=")) {
        Some(arg) => warn(
            id,
            false,
            format!(
                "{arg} is on the command line: IOMMU groups are split by pretending devices are isolated; \
                 devices in a fake group can still reach each other by peer-to-peer DMA, so a guest may \
                 read or corrupt host devices' memory (the groups vfiotool shows are not real isolation)"
            ),
            format!(
                "only if you accept the risk keep it; otherwise move the card to a CPU-attached slot and\n{}",
                f.boot.fix(&[], &[arg])
            ),
        ),
        None => ok(id, false, "no pcie_acs_override (groups are the hardware's)"),
    }
}

const FB_NAMES: [&str; 7] = [
    "efifb",
    "simplefb",
    "simpledrm",
    "simple-framebuffer",
    "vesafb",
    "vesa-framebuffer",
    "BOOTFB",
];

fn check_framebuffer(root: &HostRoot, f: &Facts) -> Check {
    let id = "framebuffer";
    let mut holders: Vec<String> = Vec::new();
    let mut platform_bound = false;
    if let Some(iomem) = &f.iomem {
        for line in iomem.lines() {
            let name = line.split_once(" : ").map_or("", |(_, n)| n.trim());
            if let Some(fb) = FB_NAMES.iter().find(|fb| name.starts_with(**fb)) {
                holders.push(format!("{fb} in /proc/iomem"));
            }
        }
    }
    for drv in [
        "efi-framebuffer",
        "simple-framebuffer",
        "vesa-framebuffer",
        "simpledrm",
    ] {
        let dir = root.sysfs.join("bus/platform/drivers").join(drv);
        let bound = sysfs::dir_names(&dir)
            .unwrap_or_default()
            .into_iter()
            .any(|n| n.contains('.') && !matches!(n.as_str(), "bind" | "unbind" | "uevent" | "module"));
        if bound {
            holders.push(format!("platform driver {drv}"));
            platform_bound = true;
        }
    }
    holders.dedup();
    let released = [
        "initcall_blacklist=sysfb_init",
        "video=efifb:off",
        "video=simplefb:off",
        "video=vesafb:off",
    ]
    .into_iter()
    .find(|a| f.has_arg(a));
    let boot = f.boot_gpus();
    let boot_text: Vec<String> = boot.iter().map(|d| d.address.to_string()).collect();
    if holders.is_empty() {
        let note = released.map(|a| format!(" ({a} set)")).unwrap_or_default();
        return ok(id, false, format!("no firmware framebuffer holds a GPU{note}"));
    }
    // A DRM driver on the boot GPU removes the firmware framebuffer when it binds; what is left
    // in /proc/iomem then is only the resource name.
    let drm_took_over = boot.iter().find_map(|d| {
        d.driver
            .as_deref()
            .filter(|drv| ["i915", "xe", "amdgpu", "radeon", "nouveau"].contains(drv))
    });
    if let (Some(drv), false) = (drm_took_over, platform_bound) {
        return ok(
            id,
            false,
            format!(
                "{drv} drives the boot GPU and replaced the firmware framebuffer ({})",
                holders.join(", ")
            ),
        );
    }
    if boot.is_empty() {
        return ok(
            id,
            false,
            format!(
                "firmware framebuffer active ({}), no boot GPU to pass",
                holders.join(", ")
            ),
        );
    }
    let passing_boot = boot.iter().any(|d| d.driver.as_deref() == Some("vfio-pci"));
    let msg = format!(
        "{} holds the boot GPU {}'s memory: passing that GPU fails with \"BAR 0: can't reserve\" until it is released{}",
        holders.join(", "),
        boot_text.join(", "),
        if passing_boot { " (it is bound to vfio-pci now)" } else { "" }
    );
    warn(
        id,
        false,
        msg,
        format!(
            "only if you pass the boot GPU: {}",
            f.boot.fix(&["initcall_blacklist=sysfb_init"], &[]).replacen(
                '\n',
                "  (kernels before 5.15: video=efifb:off)\n",
                1
            )
        ),
    )
}

fn check_boot_vga(f: &Facts) -> Check {
    let id = "boot_vga";
    if let Some(e) = &f.devices_error {
        return warn(
            id,
            false,
            format!("cannot read the PCI devices: {e}"),
            "run as root, or check the sysfs root",
        );
    }
    let gpus: Vec<&Device> = f.devices().filter(|d| d.is_display()).collect();
    if gpus.is_empty() {
        return ok(id, false, "no display controller found");
    }
    let boot = f.boot_gpus();
    let describe = |d: &Device| format!("{} (driver {})", d.address, d.driver.as_deref().unwrap_or("none"));
    let others: Vec<String> = gpus
        .iter()
        .filter(|d| d.boot_vga != Some(true))
        .map(|d| describe(d))
        .collect();
    let boot_text: Vec<String> = boot.iter().map(|d| describe(d)).collect();
    let mut msg = match boot_text.is_empty() {
        true => "no GPU has boot_vga=1".to_string(),
        false => format!("boot GPU {}", boot_text.join(", ")),
    };
    if !others.is_empty() {
        msg.push_str(&format!("; other GPUs: {}", others.join(", ")));
    }
    if others.is_empty() && !boot.is_empty() {
        warn(
            id,
            false,
            format!("{msg}: the only GPU is the boot GPU, so passing it leaves the host headless"),
            "pass it only with a clean ROM (vfiotool rom dump) and the framebuffer released (see framebuffer), \
             or make another GPU primary in the firmware setup",
        )
    } else {
        ok(id, false, msg)
    }
}

fn check_bootloader(f: &Facts) -> Check {
    let id = "bootloader";
    let b = &f.boot;
    let Some(config) = &b.config else {
        return warn(
            id,
            false,
            "no GRUB, systemd-boot, proxmox-boot-tool or kernelstub configuration found",
            "edit your boot loader's kernel command line by hand; vfiotool prints the arguments to add",
        );
    };
    // Arguments the config has that the running kernel did not get: not applied yet.
    let wanted = [
        "intel_iommu=on",
        "amd_iommu=on",
        "iommu=pt",
        "initcall_blacklist=sysfb_init",
    ];
    let pending: Vec<&str> = wanted
        .into_iter()
        .filter(|a| b.configures(a) && !f.has_arg(a))
        .collect();
    if pending.is_empty() {
        ok(id, false, format!("{} (/{config})", b.name()))
    } else {
        let apply = match b.kind {
            bootloader::Kind::Grub => {
                "update-grub (Fedora: grub2-mkconfig -o /boot/grub2/grub.cfg), then reboot"
            }
            bootloader::Kind::ProxmoxBootTool => "proxmox-boot-tool refresh, then reboot",
            bootloader::Kind::Kernelstub => "reboot (kernelstub writes the loader entry itself)",
            _ => "regenerate the boot entries, then reboot",
        };
        warn(
            id,
            false,
            format!(
                "{} (/{config}) configures {} but the running kernel did not get it",
                b.name(),
                pending.join(" ")
            ),
            apply,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_ids() {
        assert_eq!(parse_version("6.1.0-27-amd64"), Some((6, 1)));
        assert_eq!(parse_version("6.18.44-fc"), Some((6, 18)));
        assert_eq!(parse_id("10de:1b80"), Some((Some(0x10de), Some(0x1b80))));
        assert_eq!(parse_id("ffffffff:1b80"), Some((None, Some(0x1b80))));
        assert_eq!(parse_id("10de"), None);
    }

    use crate::pci::address::PciAddress;
    use crate::vfio::ioctl::{DeviceInfo, RegionInfo};
    use std::cell::RefCell;
    use std::io;
    use std::path::Path;

    /// A fake /dev/vfio: `open` fails for paths in `busy`; `set_iommu` returns `iommu`.
    struct Fake {
        busy: Vec<String>,
        viable: bool,
        iommu: Option<i32>,
        calls: RefCell<Vec<String>>,
    }

    impl VfioOps for Fake {
        type Fd = String;
        fn open(&self, path: &Path) -> io::Result<String> {
            let p = path.display().to_string();
            self.calls.borrow_mut().push(format!("open {p}"));
            if self.busy.contains(&p) {
                return Err(io::Error::from_raw_os_error(nix::libc::EBUSY));
            }
            Ok(p)
        }
        fn api_version(&self, _: &String) -> io::Result<i32> {
            Ok(0)
        }
        fn check_extension(&self, _: &String, ext: u32) -> io::Result<bool> {
            Ok(ext == TYPE1V2_IOMMU)
        }
        fn group_status(&self, _: &String) -> io::Result<u32> {
            Ok(if self.viable { GROUP_FLAGS_VIABLE } else { 0 })
        }
        fn set_container(&self, g: &String, _: &String) -> io::Result<()> {
            self.calls.borrow_mut().push(format!("set_container {g}"));
            Ok(())
        }
        fn set_iommu(&self, _: &String, t: u32) -> io::Result<()> {
            self.calls.borrow_mut().push(format!("set_iommu {t}"));
            match self.iommu {
                None => Ok(()),
                Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            }
        }
        fn device_fd(&self, _: &String, _: &str) -> io::Result<String> {
            panic!("the interrupt-remapping probe must never open a device (it resets it)")
        }
        fn device_info(&self, _: &String) -> io::Result<DeviceInfo> {
            unreachable!()
        }
        fn region_info(&self, _: &String, _: u32) -> io::Result<RegionInfo> {
            unreachable!()
        }
        fn read_at(&self, _: &String, _: &mut [u8], _: u64) -> io::Result<usize> {
            unreachable!()
        }
    }

    fn dev(addr: &str, driver: Option<&str>, group: u32, bridge: bool) -> Device {
        Device {
            address: PciAddress::parse(addr).unwrap(),
            vendor_id: 0x1234,
            device_id: 0x11e8,
            class_code: if bridge { 0x060400 } else { 0x00ff00 },
            revision: None,
            header_type: Some(u8::from(bridge)),
            subsystem_vendor_id: None,
            subsystem_device_id: None,
            driver: driver.map(str::to_string),
            driver_override: None,
            iommu_group: Some(group),
            reset_methods: vec![],
            boot_vga: None,
            rom: false,
            bridge,
        }
    }

    fn fake(busy: &[&str], viable: bool, iommu: Option<i32>) -> Fake {
        Fake {
            busy: busy.iter().map(|s| s.to_string()).collect(),
            viable,
            iommu,
            calls: RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn probe_picks_a_vfio_group_and_never_opens_a_device() {
        let groups = Groups::from_devices(vec![
            dev("00:05.0", Some("nvme"), 3, false),
            dev("00:06.0", Some("pcieport"), 4, true),
            dev("01:01.0", Some("vfio-pci"), 4, false),
            dev("01:02.0", Some("vfio-pci"), 4, false),
        ]);
        let f = fake(&[], true, None);
        assert_eq!(
            probe_set_iommu(&f, Path::new("/dev/vfio"), &groups),
            IrProbe::Passed { group: 4 }
        );
        assert_eq!(
            *f.calls.borrow(),
            [
                "open /dev/vfio/vfio",
                "open /dev/vfio/4",
                "set_container /dev/vfio/4",
                "set_iommu 3"
            ]
        );
        let f = fake(&[], true, Some(nix::libc::EPERM));
        match probe_set_iommu(&f, Path::new("/dev/vfio"), &groups) {
            IrProbe::Refused { group: 4, error } => assert!(error.starts_with("VFIO_SET_IOMMU: "), "{error}"),
            other => panic!("{other:?}"),
        }
        let f = fake(&["/dev/vfio/4"], true, None);
        assert_eq!(
            probe_set_iommu(&f, Path::new("/dev/vfio"), &groups),
            IrProbe::NotTested("group 4 is in use (a VM holds it)".into())
        );
        let f = fake(&[], false, None);
        assert_eq!(
            probe_set_iommu(&f, Path::new("/dev/vfio"), &groups),
            IrProbe::NotTested("group 4 is not viable".into())
        );
    }

    #[test]
    fn probe_needs_a_group_wholly_on_vfio_pci() {
        let groups = Groups::from_devices(vec![
            dev("01:01.0", Some("vfio-pci"), 4, false),
            dev("01:02.0", Some("nvme"), 4, false),
            dev("00:07.0", Some("pcieport"), 5, true),
        ]);
        let f = fake(&[], true, None);
        assert_eq!(
            probe_set_iommu(&f, Path::new("/dev/vfio"), &groups),
            IrProbe::NotTested("no group bound to vfio-pci".into())
        );
        assert!(f.calls.borrow().is_empty(), "nothing opened");
    }

    #[test]
    fn ir_chip_names() {
        let text = " 24:  0  IR-PCI-MSI 512000-edge  ahci[0000:00:1f.2]\n  9:  0  IR-IO-APIC  9-fasteoi  acpi\n 25: 1 IR-PCI-MSI-0000:00:02.0 0-edge i915\n";
        assert_eq!(ir_chips(text), ["IR-IO-APIC", "IR-PCI-MSI"]);
        assert!(ir_chips(" 24: 0 PCI-MSI 512000-edge ahci\n").is_empty());
    }
}
