//! `bind` and `unbind`: plan, apply with records, prove, roll back.
//!
//! Kernel ABI order for each device (as libvirt does it): driver_override = vfio-pci, unbind from
//! the current driver (in a child process with a deadline), drivers_probe, then re-read the
//! `driver` link, because the drivers_probe write succeeds even when the probe fails. Before the
//! first write to a device its original driver and override are recorded under /run; any failure
//! (or SIGINT/SIGTERM/SIGHUP) rolls every touched device back to that record.
//!
//! A write still blocked at the deadline (a driver's remove() that does not return) leaves its
//! device locked by the kernel: reading or writing any of its attributes would block too, so
//! from then on the run does not touch that device at all, says what state it will be in once
//! remove() returns, and keeps its record for a later `bind` or `unbind`.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use serde::Serialize;

use super::host::{Host, WriteError};
use super::ioctl::IommufdOps;
use super::iommufd;
use super::proof::{self, Backend, Proof};
use super::signals::Interrupted;
use super::state::{self, Record};
use super::{lock, Step};
use crate::error::ExitKind;
use crate::pci::address::{AddressSpec, PciAddress};

pub const SCHEMA: &str = "vfiotool.bind/1";
pub const VFIO_PCI: &str = "vfio-pci";

/// Drivers that do not claim DMA ownership: a group member on one of them does not break viability.
const HARMLESS: &[&str] = &["vfio-pci", "pci-stub", "pcieport"];

#[derive(Debug, Clone)]
pub struct BindOptions {
    pub group: bool,
    pub force: bool,
    pub dry_run: bool,
    pub open_device: bool,
    pub timeout: Duration,
    /// Which VFIO interface proves the groups.
    pub backend: BackendChoice,
}

/// The `--backend` of bind and `rom dump --via vfio`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendChoice {
    Legacy,
    Iommufd,
    /// iommufd when the kernel has it for these devices, legacy otherwise.
    #[default]
    Auto,
}

impl BackendChoice {
    /// The backend to use for `devices` (on vfio-pci by now, except in a dry run, where the
    /// kernel's vfio-dev class stands in for the devices' own vfio-dev/ directories).
    pub fn resolve(self, host: &Host, devices: &[PciAddress], dry_run: bool) -> Backend {
        match self {
            BackendChoice::Legacy => Backend::Legacy,
            BackendChoice::Iommufd => Backend::Iommufd,
            BackendChoice::Auto => {
                let cdev = if dry_run {
                    host.path("/dev/iommu").exists() && host.path("/sys/class/vfio-dev").is_dir()
                } else {
                    !devices.is_empty() && devices.iter().all(|d| iommufd::available(host, d))
                };
                if cdev {
                    Backend::Iommufd
                } else {
                    Backend::Legacy
                }
            }
        }
    }
}

/// One device the command changes.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub address: PciAddress,
    pub vendor: String,
    pub device: String,
    pub class: String,
    pub iommu_group: Option<u32>,
    /// "requested" (named on the command line), "card" (another function of the same slot in
    /// the same IOMMU group: one card, taken with it) or "group" (taken by --group).
    pub why: &'static str,
    pub driver_before: Option<String>,
    pub override_before: Option<String>,
    pub driver_after: Option<String>,
    pub override_after: Option<String>,
    /// A write to this device was still blocked in the kernel when vfiotool gave up waiting:
    /// the device was not read again, `driver_after`/`override_after` are unknown (null), and
    /// the error says what state it will be in.
    pub blocked: bool,
}

/// A device left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub address: PciAddress,
    pub reason: String,
}

/// The whole story of one run, printed as human text or as a `vfiotool.bind/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub command: &'static str,
    pub request: String,
    pub dry_run: bool,
    pub groups: Vec<u32>,
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
    /// Reasons the command refused to start (nothing was changed).
    pub refused: Vec<String>,
    pub steps: Vec<Step>,
    pub proofs: Vec<Proof>,
    /// Every group proven viable (bind only; false when no proof ran).
    pub viable: bool,
    pub rolled_back: bool,
    pub rollback_steps: Vec<Step>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub exit_code: u8,
    #[serde(skip)]
    pub exit: ExitKind,
}

impl Report {
    fn new(command: &'static str, request: &str, dry_run: bool) -> Self {
        Report {
            schema: SCHEMA,
            command,
            request: request.to_string(),
            dry_run,
            groups: Vec::new(),
            targets: Vec::new(),
            skipped: Vec::new(),
            refused: Vec::new(),
            steps: Vec::new(),
            proofs: Vec::new(),
            viable: false,
            rolled_back: false,
            rollback_steps: Vec::new(),
            warnings: Vec::new(),
            error: None,
            exit_code: 0,
            exit: ExitKind::Success,
        }
    }

    fn finish(mut self, exit: ExitKind, error: Option<String>) -> Self {
        self.exit = exit;
        self.exit_code = exit.code();
        if error.is_some() {
            self.error = error;
        }
        self
    }
}

fn hex(v: u32, w: usize) -> String {
    format!("{v:0w$x}")
}

fn target(host: &Host, addr: PciAddress, why: &'static str) -> Target {
    let (v, d) = host.ids(&addr);
    Target {
        address: addr,
        vendor: hex(v.into(), 4),
        device: hex(d.into(), 4),
        class: hex(host.class(&addr), 6),
        iommu_group: host.iommu_group(&addr),
        why,
        driver_before: host.driver(&addr),
        override_before: host.driver_override(&addr),
        driver_after: None,
        override_after: None,
        blocked: false,
    }
}

/// The functions a request names (every existing function of a slot).
/// The addresses that are not bridges; bridges go to `skipped` (they never change driver, and
/// pcieport does not break a group's viability).
fn without_bridges(host: &Host, found: Vec<PciAddress>, skipped: &mut Vec<Skipped>) -> Vec<PciAddress> {
    let (bridges, rest): (Vec<_>, Vec<_>) = found.into_iter().partition(|a| host.is_bridge(a));
    skipped.extend(bridges.into_iter().map(|address| Skipped {
        address,
        reason: "PCI bridge: bridges are never bound".into(),
    }));
    rest
}

pub fn resolve(host: &Host, spec: &AddressSpec) -> Result<Vec<PciAddress>, String> {
    let found = match spec {
        AddressSpec::Function(a) => {
            if host.exists(a) {
                vec![*a]
            } else {
                Vec::new()
            }
        }
        AddressSpec::Slot(s) => host.slot_functions(s),
    };
    if found.is_empty() {
        return Err(format!(
            "no PCI device {spec} (nothing under {}); check the address with `lspci -D`",
            host.path("/sys/bus/pci/devices").display()
        ));
    }
    Ok(found)
}

/// Why `addr` must not be taken from the host without `--force`, if it is host-critical.
pub fn host_critical(host: &Host, addr: &PciAddress) -> Option<String> {
    let class = host.class(addr) >> 16;
    let real = fs::canonicalize(host.device_dir(addr)).ok()?;
    if class == 0x03 && host.boot_vga(addr) {
        let fb = fs::read_to_string(host.path("/proc/fb")).unwrap_or_default();
        if !fb.trim().is_empty() {
            return Some(format!(
                "{addr} is the boot GPU and a framebuffer holds it ({}); stop the console/display \
                 manager or boot with video=efifb:off",
                fb.lines().next().unwrap_or("").trim()
            ));
        }
    }
    // Block devices below the device with a mounted file system or active swap.
    if let Ok(blocks) = fs::read_dir(host.path("/sys/block")) {
        let mounts = fs::read_to_string(host.path("/proc/mounts")).unwrap_or_default()
            + &fs::read_to_string(host.path("/proc/swaps")).unwrap_or_default();
        for b in blocks.filter_map(|e| e.ok()).take(4096) {
            let Ok(dev) = fs::canonicalize(b.path()) else {
                continue;
            };
            if !dev.starts_with(&real) {
                continue;
            }
            let name = b.file_name().to_string_lossy().into_owned();
            let dev_name = format!("/dev/{name}");
            let hit = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(|src| (src, l)))
                .find(|(src, _)| src.starts_with(&dev_name));
            if let Some((src, line)) = hit {
                let on = line.split_whitespace().nth(1).unwrap_or("swap");
                return Some(format!(
                    "{addr} is the storage controller of {src}, mounted on {on}; unmount it first"
                ));
            }
        }
    }
    // The NIC of the default route.
    if let Ok(route) = fs::read_to_string(host.path("/proc/net/route")) {
        for l in route.lines().skip(1).take(4096) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() > 2 && f[1] == "00000000" {
                let dev = host.path("/sys/class/net").join(f[0]).join("device");
                if fs::canonicalize(dev).ok().as_deref() == Some(real.as_path()) {
                    return Some(format!(
                        "{addr} is the network card of the default route ({}); you would lose the network",
                        f[0]
                    ));
                }
            }
        }
    }
    None
}

/// Is vfio-pci available? Loads it with modprobe when missing; says when it is blacklisted.
fn ensure_vfio_pci(host: &Host, dry_run: bool, steps: &mut Vec<Step>) -> Result<(), String> {
    if host.driver_loaded(VFIO_PCI) {
        return Ok(());
    }
    if dry_run {
        steps.push(Step::other("module", "modprobe vfio-pci", "planned", None));
        return Ok(());
    }
    let out = std::process::Command::new("modprobe").arg("vfio-pci").output();
    let detail = match &out {
        Ok(o) if o.status.success() && host.driver_loaded(VFIO_PCI) => {
            steps.push(Step::other("module", "modprobe vfio-pci", "ok", None));
            return Ok(());
        }
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run modprobe: {e}"),
    };
    steps.push(Step::other(
        "module",
        "modprobe vfio-pci",
        "failed",
        Some(detail.clone()),
    ));
    let why = blacklisted(host).map_or_else(
        || {
            "the module is missing (install the kernel's modules package) or failed to load (see dmesg)"
                .to_string()
        },
        |w| format!("it is blacklisted ({w}); remove that line"),
    );
    Err(format!(
        "vfio-pci is not loaded and modprobe vfio-pci failed ({detail}): {why}"
    ))
}

fn blacklisted(host: &Host) -> Option<String> {
    let cmdline = fs::read_to_string(host.path("/proc/cmdline")).unwrap_or_default();
    for w in cmdline.split_whitespace() {
        if let Some(list) = w
            .strip_prefix("module_blacklist=")
            .or_else(|| w.strip_prefix("modprobe.blacklist="))
        {
            if list.split(',').any(|m| m == "vfio_pci" || m == "vfio-pci") {
                return Some(format!("kernel command line: {w}"));
            }
        }
    }
    for d in ["/etc/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"] {
        let Ok(rd) = fs::read_dir(host.path(d)) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()).take(1024) {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            for l in text.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() >= 2 && f[0] == "blacklist" && (f[1] == "vfio_pci" || f[1] == "vfio-pci") {
                    return Some(format!("{}: {l}", e.path().display()));
                }
            }
        }
    }
    None
}

/// The bind plan: targets, skipped devices, refusals, groups.
fn plan_bind(
    host: &Host,
    spec: &AddressSpec,
    opts: &BindOptions,
    r: &mut Report,
) -> Result<(), (ExitKind, String)> {
    let found = resolve(host, spec).map_err(|e| (ExitKind::System, e))?;
    let chosen: BTreeSet<PciAddress> = without_bridges(host, found, &mut r.skipped).into_iter().collect();
    if chosen.is_empty() {
        return Err((
            ExitKind::BadInput,
            format!("{spec} is a PCI bridge; bridges are never bound to vfio-pci"),
        ));
    }
    let mut groups = BTreeSet::new();
    for a in &chosen {
        match host.iommu_group(a) {
            Some(g) => {
                groups.insert(g);
            }
            None => r.warnings.push(format!(
                "{a} has no IOMMU group: the IOMMU is off (intel_iommu=on / amd_iommu=on, VT-d/AMD-Vi in \
                 firmware); vfio-pci will refuse it"
            )),
        }
    }
    r.groups = groups.iter().copied().collect();
    let mut extra: BTreeSet<PciAddress> = BTreeSet::new();
    let mut card: BTreeSet<PciAddress> = BTreeSet::new();
    let mut blockers = Vec::new();
    let slots: BTreeSet<_> = chosen.iter().map(PciAddress::slot).collect();
    for g in &groups {
        for m in host.group_members(*g) {
            if chosen.contains(&m) {
                continue;
            }
            if host.is_bridge(&m) {
                r.skipped.push(Skipped {
                    address: m,
                    reason: format!("PCI bridge in group {g}: left alone, does not affect viability"),
                });
                continue;
            }
            let drv = host.driver(&m);
            let harmless = drv.as_deref().is_none_or(|d| HARMLESS.contains(&d));
            if slots.contains(&m.slot()) && drv.as_deref() != Some(VFIO_PCI) {
                // Another function of the same card (a GPU's HDMI audio, USB-C controller) in the
                // same group: the VM needs it too and the group is not viable without it.
                card.insert(m);
            } else if opts.group {
                if drv.as_deref() == Some(VFIO_PCI) {
                    r.skipped.push(Skipped {
                        address: m,
                        reason: format!("group {g} member already on vfio-pci"),
                    });
                } else {
                    extra.insert(m);
                }
            } else if harmless {
                r.skipped.push(Skipped {
                    address: m,
                    reason: format!(
                        "group {g} member on {}: does not break viability",
                        drv.as_deref().unwrap_or("no driver")
                    ),
                });
            } else {
                blockers.push(format!("{m} ({})", drv.unwrap_or_default()));
            }
        }
    }
    if !blockers.is_empty() {
        let msg =
            format!(
            "IOMMU group {} also holds {} on host drivers; the group would not be viable. Bind the whole \
             group with --group (check that you can spare those devices)",
            r.groups.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(","),
            blockers.join(", ")
        );
        if opts.force {
            r.warnings.push(format!("--force: {msg}"));
        } else {
            r.refused.push(msg);
        }
    }
    for a in &chosen {
        r.targets.push(target(host, *a, "requested"));
    }
    for a in &card {
        r.targets.push(target(host, *a, "card"));
    }
    for a in &extra {
        r.targets.push(target(host, *a, "group"));
    }
    r.targets.sort_by_key(|t| t.address);
    for t in &r.targets {
        if let Some(why) = host_critical(host, &t.address) {
            if opts.force {
                r.warnings.push(format!("--force: {why}"));
            } else {
                r.refused.push(format!("{why} (--force overrides)"));
            }
        }
    }
    Ok(())
}

/// Lock every IOMMU group the request touches (`none` for devices without a group). A group
/// member taken by `--group` is in one of these groups, so it is covered too.
fn lock_groups(host: &Host, spec: &AddressSpec) -> crate::error::Result<Vec<lock::GroupLock>> {
    let found = resolve(host, spec).unwrap_or_default();
    let mut names: Vec<String> = found
        .iter()
        .map(|a| {
            host.iommu_group(a)
                .map_or_else(|| "none".to_string(), |g| g.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names.into_iter().map(|n| lock::lock_group(host, &n)).collect()
}

fn not_root() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// Bind what `spec` names to vfio-pci and prove its group(s).
pub fn bind<V: IommufdOps>(
    host: &Host,
    ops: &V,
    spec: &AddressSpec,
    opts: &BindOptions,
    interrupted: &Interrupted,
) -> Report {
    let mut r = Report::new("bind", &spec.to_string(), opts.dry_run);
    if !opts.dry_run && host.root == std::path::Path::new("/") && not_root() {
        return r.finish(
            ExitKind::System,
            Some(
                "bind changes drivers through sysfs and needs root; run it with sudo (nothing was changed)"
                    .into(),
            ),
        );
    }
    // Lock before looking: a snapshot taken while another run is half-way would record its
    // intermediate state as the "original" one.
    let locks = if opts.dry_run {
        Vec::new()
    } else {
        match lock_groups(host, spec) {
            Ok(l) => l,
            Err(e) => return r.finish(e.kind, Some(e.message)),
        }
    };
    if let Err((kind, msg)) = plan_bind(host, spec, opts, &mut r) {
        return r.finish(kind, Some(msg));
    }
    if !r.refused.is_empty() {
        let msg = format!("refused, nothing was changed: {}", r.refused.join("; "));
        return r.finish(ExitKind::VerdictNotMet, Some(msg));
    }
    let mut steps = Vec::new();
    if let Err(e) = ensure_vfio_pci(host, opts.dry_run, &mut steps) {
        r.steps = steps;
        return r.finish(ExitKind::System, Some(e));
    }
    r.steps = steps;

    let mut touched: Vec<usize> = Vec::new();
    let mut failure: Option<String> = None;
    // A device whose write is still blocked in the kernel: never read or written again.
    let mut blocked: Option<PciAddress> = None;
    // What each touched target must get back (by target index).
    let mut origins: std::collections::BTreeMap<usize, Record> = std::collections::BTreeMap::new();
    for i in 0..r.targets.len() {
        if interrupted.is_set() {
            failure = Some("interrupted by a signal".into());
            break;
        }
        let t = r.targets[i].clone();
        if t.driver_before.as_deref() == Some(VFIO_PCI) {
            r.steps.push(Step::other(
                "check",
                t.address.to_string(),
                "skipped",
                Some("already on vfio-pci".into()),
            ));
            continue;
        }
        if !opts.dry_run {
            touched.push(i);
        }
        let orig = origin(host, &t);
        origins.insert(i, orig.0.clone());
        if let Err(e) = bind_one(host, &t, &orig, opts, &mut r.steps) {
            if let DevError::Blocked(_, pid) = &e {
                note_lock_holder(host, &t.address, *pid);
                blocked = Some(t.address);
            }
            failure = Some(e.message());
            break;
        }
    }
    if failure.is_none() && interrupted.is_set() {
        failure = Some("interrupted by a signal".into());
    }
    if failure.is_none() {
        for g in r.groups.clone() {
            let devs: Vec<PciAddress> = r
                .targets
                .iter()
                .filter(|t| t.iommu_group == Some(g))
                .map(|t| t.address)
                .collect();
            let backend = opts.backend.resolve(host, &devs, opts.dry_run);
            if opts.dry_run {
                r.steps.extend(match backend {
                    Backend::Legacy => proof::planned_steps(g, &devs, opts.open_device),
                    Backend::Iommufd => iommufd::planned_steps(&devs),
                });
            } else {
                let p = match backend {
                    Backend::Legacy => proof::prove(
                        ops,
                        &host.path("/dev/vfio"),
                        g,
                        &devs,
                        opts.open_device,
                        &mut r.steps,
                    ),
                    Backend::Iommufd => iommufd::prove_group(ops, host, g, &devs, &mut r.steps),
                };
                let err = p.error.clone();
                r.proofs.push(p);
                if let Some(e) = err {
                    failure = Some(format!("proof of IOMMU group {g} failed: {e}"));
                    break;
                }
            }
        }
        if !opts.dry_run {
            r.viable = !r.proofs.is_empty() && r.proofs.iter().all(|p| p.viable);
        }
    }
    if failure.is_none() && interrupted.is_set() {
        failure = Some("interrupted by a signal".into());
    }
    if failure.is_none() && !opts.dry_run && r.groups.is_empty() {
        // vfio-pci took a device that has no IOMMU group (no-IOMMU mode?): nothing can prove
        // it is safe to give to a VM, so it is not kept.
        failure = Some("the devices have no IOMMU group, so no group can be proven".into());
    }
    read_after(host, &mut r.targets, blocked);
    let Some(err) = failure else {
        return r.finish(ExitKind::Success, None);
    };
    // Roll back every device this run touched, newest first; a blocked device is left alone
    // (it is locked; its record stays for a later `unbind`).
    let mut complete = true;
    let mut rb = Vec::new();
    for &i in touched.iter().rev() {
        let t = &r.targets[i];
        if Some(t.address) == blocked {
            continue;
        }
        let Some(rec) = origins.get(&i) else {
            continue;
        };
        match restore_one(host, &t.address, Some(rec), opts.timeout, &mut rb) {
            Ok(_) => {
                let _ = state::remove(host, &t.address);
            }
            Err(e) => {
                complete = false;
                if let DevError::Blocked(_, pid) = &e {
                    note_lock_holder(host, &t.address, *pid);
                    blocked = blocked.or(Some(t.address));
                }
                r.warnings.push(e.message());
            }
        }
    }
    r.rollback_steps = rb;
    r.rolled_back = touched.iter().any(|&i| Some(r.targets[i].address) != blocked);
    read_after(host, &mut r.targets, blocked);
    if let Some(b) = blocked {
        keep_locked(locks);
        let others = if touched.len() > 1 {
            if complete {
                "; every other device this run touched is back on its original driver"
            } else {
                "; ROLLBACK INCOMPLETE for other devices"
            }
        } else {
            ""
        };
        let rest = r
            .warnings
            .iter()
            .filter(|w| !w.contains(&b.to_string()))
            .cloned()
            .collect::<Vec<_>>();
        let msg = format!(
            "{err}{others}{}",
            if rest.is_empty() {
                String::new()
            } else {
                format!(": {}", rest.join("; "))
            }
        );
        return r.finish(ExitKind::RollbackFailed, Some(msg));
    }
    if complete {
        let what = if touched.is_empty() {
            "nothing had been changed".to_string()
        } else {
            "every device is back on its original driver and driver_override".to_string()
        };
        r.finish(ExitKind::RolledBack, Some(format!("{err}; rolled back: {what}")))
    } else {
        let msg = format!(
            "{err}; ROLLBACK INCOMPLETE, fix by hand: {}",
            r.warnings.join("; ")
        );
        r.finish(ExitKind::RollbackFailed, Some(msg))
    }
}

/// Leave the group locks to the abandoned writer: dropping a guard would unlock the shared lock
/// (flock belongs to the open file, which the writer child shares), so the guards are leaked and
/// the lock ends when the last process holding the file (the writer) exits.
fn keep_locked(locks: Vec<lock::GroupLock>) {
    std::mem::forget(locks);
}

/// Each target's driver and override after the run, except a blocked device's: reading its
/// driver_override would block on the device lock a running remove() holds.
fn read_after(host: &Host, targets: &mut [Target], blocked: Option<PciAddress>) {
    for t in targets.iter_mut() {
        t.blocked = Some(t.address) == blocked;
        if t.blocked {
            t.driver_after = None;
            t.override_after = None;
            continue;
        }
        t.driver_after = host.driver(&t.address);
        t.override_after = host.driver_override(&t.address);
    }
}

/// Why a step on one device did not finish.
#[derive(Debug)]
enum DevError {
    /// It failed; the device can still be read and written.
    Failed(String),
    /// A write is still blocked in the kernel (a driver's remove() or probe runs): the kernel
    /// holds the device lock, so any read or write of the device's attributes would block too.
    /// `pid` is the writer process that goes on with it.
    Blocked(String, u32),
}

impl DevError {
    fn message(self) -> String {
        match self {
            DevError::Failed(m) | DevError::Blocked(m, _) => m,
        }
    }
}

fn write_step(
    host: &Host,
    steps: &mut Vec<Step>,
    path: std::path::PathBuf,
    value: &str,
    dry_run: bool,
    timeout: Duration,
) -> Result<(), DevError> {
    let shown = path.display().to_string();
    if dry_run {
        steps.push(Step::write(shown, value, "planned", None));
        return Ok(());
    }
    match host.write_timed(&path, value, timeout) {
        Ok(()) => {
            steps.push(Step::write(shown, value, "ok", None));
            Ok(())
        }
        Err(WriteError::TimedOut { after, pid }) => {
            steps.push(Step::write(
                shown.clone(),
                value,
                "failed",
                Some(format!("still blocked after {} s", after.as_secs_f32())),
            ));
            Err(DevError::Blocked(
                format!(
                    "the write of {:?} to {shown} is still blocked after {} s (process {pid} goes on with it)",
                    value.trim_end(),
                    after.as_secs_f32()
                ),
                pid,
            ))
        }
        Err(e) => {
            steps.push(Step::write(shown.clone(), value, "failed", Some(e.to_string())));
            Err(DevError::Failed(format!(
                "write {:?} to {shown}: {e}",
                value.trim_end()
            )))
        }
    }
}

/// What holds `addr` while a write to its driver's unbind blocks: the driver itself (its
/// remove() runs in the kernel) and any process /proc shows with the device open.
fn holders_text(host: &Host, addr: &PciAddress, driver: &str) -> String {
    let holders = host.likely_holders(addr);
    format!(
        "{driver}'s remove() has not returned (the kernel holds {addr}'s device lock until it does); \
         likely holders in /proc: {}",
        if holders.is_empty() {
            "none found (a kernel user such as a display server, nvidia-persistenced, or the driver \
             itself waiting for its hardware?)"
                .to_string()
        } else {
            holders.join(", ")
        }
    )
}

/// Keep other vfiotool runs off the device's group while the abandoned write is in flight: the
/// writer child inherited the lock, so the group stays locked; name it in the lock file.
fn note_lock_holder(host: &Host, addr: &PciAddress, pid: u32) {
    let group = host
        .iommu_group(addr)
        .map_or_else(|| "none".to_string(), |g| g.to_string());
    let _ = fs::write(
        host.path("/run/vfiotool").join(format!("group-{group}.lock")),
        format!("{pid}, a write to {addr} still blocked in the kernel\n"),
    );
}

/// What `t` must get back. The device is not on vfio-pci, so normally what it has now; but a
/// record of an earlier run is kept when the device is still in that run's half-way state
/// (driver_override vfio-pci and no driver: a bind killed in the middle, or one whose unbind
/// stayed blocked in the kernel), or the original driver would be forgotten.
fn origin(host: &Host, t: &Target) -> (Record, bool) {
    let halfway = t.override_before.as_deref() == Some(VFIO_PCI) && t.driver_before.is_none();
    if halfway {
        if let Ok(Some(old)) = state::load(host, &t.address) {
            return (old, true);
        }
    }
    (
        Record {
            schema: state::RECORD_SCHEMA.into(),
            address: t.address.to_string(),
            driver: t.driver_before.clone(),
            driver_override: t.override_before.clone(),
        },
        false,
    )
}

fn bind_one(
    host: &Host,
    t: &Target,
    rec: &(Record, bool),
    opts: &BindOptions,
    steps: &mut Vec<Step>,
) -> Result<(), DevError> {
    let a = t.address;
    let dir = host.device_dir(&a);
    let record = state::path(host, &a);
    if !opts.dry_run {
        let (rec, kept) = rec;
        let p = state::save(host, rec).map_err(|e| DevError::Failed(e.message))?;
        steps.push(Step::other(
            "record",
            p.display().to_string(),
            "ok",
            Some(format!(
                "driver {}, override {}{}",
                rec.driver.as_deref().unwrap_or("none"),
                rec.driver_override.as_deref().unwrap_or("none"),
                if *kept {
                    " (kept from an earlier run that stopped half-way)"
                } else {
                    ""
                }
            )),
        ));
    } else {
        steps.push(Step::other(
            "record",
            record.display().to_string(),
            "planned",
            None,
        ));
    }
    let locked = |m: String| {
        format!(
            "{m}: {a} is locked in the kernel (a driver's probe or remove() is running, see `dmesg`), \
             so vfiotool stopped touching it; its original driver is recorded in {}; once the kernel \
             lets go, run `vfiotool unbind {a}` to give it back or `vfiotool bind {a}` to finish",
            record.display()
        )
    };
    write_step(
        host,
        steps,
        dir.join("driver_override"),
        VFIO_PCI,
        opts.dry_run,
        opts.timeout,
    )
    .map_err(|e| match e {
        DevError::Blocked(m, pid) => DevError::Blocked(locked(m), pid),
        other => other,
    })?;
    if let Some(d) = &t.driver_before {
        write_step(
            host,
            steps,
            dir.join("driver/unbind"),
            &a.to_string(),
            opts.dry_run,
            opts.timeout,
        )
        .map_err(|e| match e {
            DevError::Blocked(m, pid) => DevError::Blocked(
                format!(
                    "unbinding {a} from {d}: {m}: {}. vfiotool stopped touching {a}: it has no driver \
                 now, and once remove() returns it stays so: no driver and driver_override vfio-pci \
                 (IOMMU group locked against other vfiotool runs until then). Its original driver is \
                 recorded in {}. When {d} lets go (see `dmesg`), run `vfiotool bind {a}` to finish \
                 the bind, or `vfiotool unbind {a}` to give it back to {d}",
                    holders_text(host, &a, d),
                    record.display()
                ),
                pid,
            ),
            DevError::Failed(m) => DevError::Failed(format!("unbinding {a} from {d}: {m}")),
        })?;
    }
    write_step(
        host,
        steps,
        host.path("/sys/bus/pci/drivers_probe"),
        &a.to_string(),
        opts.dry_run,
        opts.timeout,
    )
    .map_err(|e| match e {
        DevError::Blocked(m, pid) => DevError::Blocked(locked(m), pid),
        other => other,
    })?;
    if opts.dry_run {
        return Ok(());
    }
    let now = host.driver(&a);
    if now.as_deref() == Some(VFIO_PCI) {
        steps.push(Step::other(
            "check",
            dir.join("driver").display().to_string(),
            "ok",
            Some("vfio-pci".into()),
        ));
        Ok(())
    } else {
        let got = now.unwrap_or_else(|| "no driver".into());
        steps.push(Step::other(
            "check",
            dir.join("driver").display().to_string(),
            "failed",
            Some(got.clone()),
        ));
        let hint = if host.iommu_group(&a).is_none() {
            " (the device has no IOMMU group: enable the IOMMU, e.g. intel_iommu=on)"
        } else {
            " (see `dmesg | tail` for the probe error)"
        };
        Err(DevError::Failed(format!(
            "vfio-pci did not bind {a}: it is on {got} after drivers_probe{hint}"
        )))
    }
}

/// Give `addr` back to `rec`'s driver and override (None: the kernel's default, override clear).
/// Returns the driver it ended on.
fn restore_one(
    host: &Host,
    addr: &PciAddress,
    rec: Option<&Record>,
    timeout: Duration,
    steps: &mut Vec<Step>,
) -> Result<Option<String>, DevError> {
    let dir = host.device_dir(addr);
    let want_override = rec.and_then(|r| r.driver_override.clone());
    let want_driver = rec.and_then(|r| r.driver.clone());
    let again = |m: String| {
        format!(
            "{m}: {addr} is locked in the kernel (a driver's probe or remove() is running, see `dmesg`), \
             so vfiotool stopped touching it; run `vfiotool unbind {addr}` again once it lets go"
        )
    };
    // An empty write ("\n") clears driver_override.
    let ov = want_override.clone().unwrap_or_else(|| "\n".into());
    write_step(host, steps, dir.join("driver_override"), &ov, false, timeout).map_err(|e| match e {
        DevError::Blocked(m, pid) => DevError::Blocked(again(m), pid),
        other => other,
    })?;
    let current = host.driver(addr);
    if let Some(cur) = current.as_deref().filter(|c| Some(*c) != want_driver.as_deref()) {
        write_step(
            host,
            steps,
            dir.join("driver/unbind"),
            &addr.to_string(),
            false,
            timeout,
        )
        .map_err(|e| match e {
            DevError::Blocked(m, pid) => DevError::Blocked(
                format!(
                    "unbinding {addr} from {cur}: {m}: {}. vfiotool stopped touching {addr}: once remove() \
                 returns it has no driver and driver_override {}; then run `vfiotool unbind {addr}` \
                 again{}",
                    holders_text(host, addr, cur),
                    want_override.as_deref().unwrap_or("clear"),
                    if rec.is_some() {
                        " (its record is kept)"
                    } else {
                        ""
                    }
                ),
                pid,
            ),
            other => other,
        })?;
    }
    let originally_driverless = rec.is_some() && want_driver.is_none();
    if host.driver(addr).is_none() && !originally_driverless {
        write_step(
            host,
            steps,
            host.path("/sys/bus/pci/drivers_probe"),
            &addr.to_string(),
            false,
            timeout,
        )
        .map_err(|e| match e {
            DevError::Blocked(m, pid) => DevError::Blocked(again(m), pid),
            other => other,
        })?;
        if let Some(d) = &want_driver {
            if host.driver(addr).as_deref() != Some(d.as_str()) && host.driver(addr).is_none() {
                let bind = host.path("/sys/bus/pci/drivers").join(d).join("bind");
                if let Err(DevError::Blocked(m, pid)) =
                    write_step(host, steps, bind, &addr.to_string(), false, timeout)
                {
                    return Err(DevError::Blocked(again(m), pid));
                }
            }
        }
    }
    let now = host.driver(addr);
    steps.push(Step::other(
        "check",
        dir.join("driver").display().to_string(),
        if rec.is_none() || now == want_driver {
            "ok"
        } else {
            "failed"
        },
        Some(now.clone().unwrap_or_else(|| "no driver".into())),
    ));
    if rec.is_some() && now != want_driver {
        return Err(DevError::Failed(format!(
            "{addr} is on {} instead of {}; run `vfiotool unbind {addr}` or write {addr} to /sys/bus/pci/drivers/{}/bind",
            now.as_deref().unwrap_or("no driver"),
            want_driver.as_deref().unwrap_or("no driver"),
            want_driver.as_deref().unwrap_or("DRIVER"),
        )));
    }
    Ok(now)
}

/// Give every function `spec` names back to its recorded driver (or the kernel's default).
pub fn unbind(
    host: &Host,
    spec: &AddressSpec,
    dry_run: bool,
    timeout: Duration,
    interrupted: &Interrupted,
) -> Report {
    let mut r = Report::new("unbind", &spec.to_string(), dry_run);
    if !dry_run && host.root == std::path::Path::new("/") && not_root() {
        return r.finish(
            ExitKind::System,
            Some(
                "unbind changes drivers through sysfs and needs root; run it with sudo (nothing was changed)"
                    .into(),
            ),
        );
    }
    let locks = if dry_run {
        Vec::new()
    } else {
        match lock_groups(host, spec) {
            Ok(l) => l,
            Err(e) => return r.finish(e.kind, Some(e.message)),
        }
    };
    let found = match resolve(host, spec) {
        Ok(f) => f,
        Err(e) => return r.finish(ExitKind::System, Some(e)),
    };
    for a in without_bridges(host, found, &mut r.skipped) {
        r.targets.push(target(host, a, "requested"));
    }
    if r.targets.is_empty() {
        return r.finish(
            ExitKind::BadInput,
            Some(format!("{spec} is a PCI bridge; nothing to unbind")),
        );
    }
    // `bind` takes a card's other functions in the same group with it; give them back with it
    // too (only those vfiotool bound: they have a record).
    let named: Vec<(PciAddress, Option<u32>)> =
        r.targets.iter().map(|t| (t.address, t.iommu_group)).collect();
    for (a, g) in &named {
        for f in host.slot_functions(&a.slot()) {
            let taken = r.targets.iter().any(|t| t.address == f);
            if !taken
                && g.is_some()
                && host.iommu_group(&f) == *g
                && state::path(host, &f).exists()
                && !host.is_bridge(&f)
            {
                r.targets.push(target(host, f, "card"));
            }
        }
    }
    r.targets.sort_by_key(|t| t.address);
    let mut groups: Vec<u32> = r.targets.iter().filter_map(|t| t.iommu_group).collect();
    groups.sort();
    groups.dedup();
    r.groups = groups;
    let mut errors = Vec::new();
    let mut blocked: Option<PciAddress> = None;
    for i in 0..r.targets.len() {
        if interrupted.is_set() {
            errors.push("interrupted by a signal".to_string());
            break;
        }
        let a = r.targets[i].address;
        let rec = match state::load(host, &a) {
            Ok(rec) => rec,
            Err(e) => {
                errors.push(e.message);
                continue;
            }
        };
        let on_vfio = r.targets[i].driver_before.as_deref() == Some(VFIO_PCI);
        let has_override = r.targets[i].override_before.is_some();
        if !on_vfio && !has_override && rec.is_none() {
            r.steps.push(Step::other(
                "check",
                a.to_string(),
                "skipped",
                Some(format!(
                    "not bound by vfiotool (on {})",
                    r.targets[i].driver_before.as_deref().unwrap_or("no driver")
                )),
            ));
            continue;
        }
        if dry_run {
            let dir = host.device_dir(&a);
            let ov = rec
                .as_ref()
                .and_then(|r| r.driver_override.clone())
                .unwrap_or_else(|| "\n".into());
            r.steps.push(Step::write(
                dir.join("driver_override").display().to_string(),
                &ov,
                "planned",
                None,
            ));
            if r.targets[i].driver_before.is_some() {
                r.steps.push(Step::write(
                    dir.join("driver/unbind").display().to_string(),
                    &a.to_string(),
                    "planned",
                    None,
                ));
            }
            r.steps.push(Step::write(
                host.path("/sys/bus/pci/drivers_probe").display().to_string(),
                &a.to_string(),
                "planned",
                None,
            ));
            continue;
        }
        if blocked.is_some() {
            // A device of this card is locked in the kernel; its siblings wait for the next run.
            errors.push(format!(
                "{a} not touched: another function of this run is blocked"
            ));
            continue;
        }
        match restore_one(host, &a, rec.as_ref(), timeout, &mut r.steps) {
            Ok(now) => {
                let _ = state::remove(host, &a);
                if now.as_deref() == Some(VFIO_PCI) {
                    r.warnings.push(format!(
                        "{a} landed on vfio-pci again: vfio-pci claims its ID (vfio-pci.ids= on the kernel \
                         command line, `options vfio-pci ids=` in /etc/modprobe.d, or a new_id write); \
                         remove that to give it back to the host"
                    ));
                } else if rec.is_none() && now.is_none() {
                    r.warnings.push(format!(
                        "{a} has no bind record and no driver claimed it after drivers_probe"
                    ));
                }
            }
            Err(e) => {
                if let DevError::Blocked(_, pid) = &e {
                    note_lock_holder(host, &a, *pid);
                    blocked = Some(a);
                }
                errors.push(e.message());
            }
        }
    }
    read_after(host, &mut r.targets, blocked);
    if blocked.is_some() {
        keep_locked(locks);
    }
    if errors.is_empty() {
        r.finish(ExitKind::Success, None)
    } else {
        r.finish(ExitKind::RollbackFailed, Some(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use super::*;

    /// A fake host: devices with a class, an optional driver, a group; bridges get `pci_bus/`.
    struct Tree {
        dir: tempfile::TempDir,
    }

    impl Tree {
        fn new() -> Self {
            Tree {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn root(&self) -> &Path {
            self.dir.path()
        }
        fn host(&self) -> Host {
            Host::at(self.root())
        }
        fn device(&self, addr: &str, class: &str, driver: Option<&str>, group: u32) {
            let d = self.root().join("sys/devices/pci0000:00").join(addr);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("class"), format!("0x{class}\n")).unwrap();
            fs::write(d.join("vendor"), "0x1b36\n").unwrap();
            fs::write(d.join("device"), "0x0010\n").unwrap();
            fs::write(d.join("driver_override"), "(null)\n").unwrap();
            let mut cfg = vec![0u8; 64];
            if class.starts_with("0604") {
                cfg[0x0e] = 1;
                fs::create_dir_all(d.join("pci_bus")).unwrap();
            }
            fs::write(d.join("config"), cfg).unwrap();
            if let Some(drv) = driver {
                let dd = self.root().join("sys/bus/pci/drivers").join(drv);
                fs::create_dir_all(&dd).unwrap();
                symlink(&dd, d.join("driver")).unwrap();
            }
            let g = self
                .root()
                .join("sys/kernel/iommu_groups")
                .join(group.to_string());
            fs::create_dir_all(g.join("devices")).unwrap();
            symlink(&g, d.join("iommu_group")).unwrap();
            symlink(&d, g.join("devices").join(addr)).unwrap();
            let all = self.root().join("sys/bus/pci/devices");
            fs::create_dir_all(&all).unwrap();
            symlink(&d, all.join(addr)).unwrap();
        }
    }

    fn opts(group: bool, force: bool) -> BindOptions {
        BindOptions {
            group,
            force,
            dry_run: true,
            open_device: false,
            timeout: Duration::from_secs(1),
            backend: BackendChoice::Legacy,
        }
    }

    fn dry(t: &Tree, spec: &str, o: &BindOptions) -> Report {
        let spec = AddressSpec::parse(spec).unwrap();
        let fake = super::super::proof::fake::FakeVfio::default();
        bind(&t.host(), &fake, &spec, o, &Interrupted::default())
    }

    #[test]
    fn dry_run_plans_the_backend_asked_for_and_auto_follows_the_kernel() {
        let t = Tree::new();
        t.device("0000:01:00.0", "030000", Some("amdgpu"), 3);
        let names = |r: &Report| -> Vec<String> {
            r.steps
                .iter()
                .filter(|s| s.action == "ioctl")
                .filter_map(|s| s.value.clone())
                .collect()
        };
        let mut o = opts(false, false);
        o.backend = BackendChoice::Iommufd;
        let r = dry(&t, "01:00.0", &o);
        assert_eq!(r.exit, ExitKind::Success, "{:?}", r.error);
        let n = names(&r);
        assert!(n.contains(&"IOMMU_IOAS_ALLOC".to_string()), "{n:?}");
        assert!(n.iter().all(|v| !v.starts_with("VFIO_SET_IOMMU")), "{n:?}");
        // auto: no /dev/iommu here, so the legacy container.
        o.backend = BackendChoice::Auto;
        let n = names(&dry(&t, "01:00.0", &o));
        assert!(n.contains(&"VFIO_SET_IOMMU".to_string()), "{n:?}");
        // auto with /dev/iommu and the vfio-dev class: the cdev.
        fs::create_dir_all(t.root().join("dev")).unwrap();
        fs::write(t.root().join("dev/iommu"), "").unwrap();
        fs::create_dir_all(t.root().join("sys/class/vfio-dev")).unwrap();
        let n = names(&dry(&t, "01:00.0", &o));
        assert!(n.contains(&"VFIO_DEVICE_ATTACH_IOMMUFD_PT".to_string()), "{n:?}");
    }

    #[test]
    fn slot_takes_every_function_and_dry_run_only_plans() {
        let t = Tree::new();
        t.device("0000:01:00.0", "030000", Some("amdgpu"), 3);
        t.device("0000:01:00.1", "040300", Some("snd_hda_intel"), 3);
        t.device("0000:00:01.0", "060400", Some("pcieport"), 3);
        let r = dry(&t, "01:00", &opts(false, false));
        assert_eq!(r.exit, ExitKind::Success, "{:?}", r.error);
        let addrs: Vec<String> = r.targets.iter().map(|t| t.address.to_string()).collect();
        assert_eq!(addrs, ["0000:01:00.0", "0000:01:00.1"]);
        assert!(r.skipped.iter().any(|s| s.address.to_string() == "0000:00:01.0"));
        assert!(r.steps.iter().all(|s| s.result == "planned"), "{:?}", r.steps);
        assert!(r
            .steps
            .iter()
            .any(|s| s.target.ends_with("0000:01:00.1/driver/unbind")));
        assert!(r
            .steps
            .iter()
            .any(|s| s.value.as_deref() == Some("VFIO_SET_IOMMU")));
        // Nothing was written.
        assert_eq!(t.host().driver_override(&PciAddress::new(0, 1, 0, 0)), None);
        assert!(!t.root().join("run").exists());
    }

    #[test]
    fn sibling_on_a_host_driver_is_refused_unless_group() {
        let t = Tree::new();
        t.device("0000:02:00.0", "0c0330", Some("xhci_hcd"), 7);
        t.device("0000:02:01.0", "00ff00", None, 7);
        t.device("0000:02:02.0", "010802", Some("nvme"), 7);
        let r = dry(&t, "02:01.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::VerdictNotMet);
        let msg = r.error.unwrap_or_default();
        assert!(
            msg.contains("0000:02:00.0 (xhci_hcd)") && msg.contains("0000:02:02.0 (nvme)"),
            "{msg}"
        );
        assert!(msg.contains("--group"));
        assert!(r.steps.is_empty());
        let r = dry(&t, "02:01.0", &opts(true, false));
        assert_eq!(r.exit, ExitKind::Success, "{:?}", r.error);
        assert_eq!(r.targets.len(), 3);
        assert_eq!(r.targets.iter().filter(|t| t.why == "group").count(), 2);
    }

    #[test]
    fn a_named_bridge_is_bad_input_and_a_missing_device_a_system_error() {
        let t = Tree::new();
        t.device("0000:00:01.0", "060400", Some("pcieport"), 1);
        let r = dry(&t, "00:01.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::BadInput);
        let r = dry(&t, "05:00.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::System);
        assert!(r.error.unwrap_or_default().contains("no PCI device 0000:05:00.0"));
    }

    #[test]
    fn host_critical_devices_need_force() {
        let t = Tree::new();
        t.device("0000:03:00.0", "010802", Some("nvme"), 4);
        t.device("0000:04:00.0", "020000", Some("e1000e"), 5);
        let dev = t.root().join("sys/devices/pci0000:00/0000:03:00.0");
        let blk = dev.join("nvme/nvme0/nvme0n1");
        fs::create_dir_all(&blk).unwrap();
        fs::create_dir_all(t.root().join("sys/block")).unwrap();
        symlink(&blk, t.root().join("sys/block/nvme0n1")).unwrap();
        fs::create_dir_all(t.root().join("proc/net")).unwrap();
        fs::write(t.root().join("proc/mounts"), "/dev/nvme0n1p2 / ext4 rw 0 0\n").unwrap();
        let nic = t.root().join("sys/class/net/eth0");
        fs::create_dir_all(&nic).unwrap();
        symlink(
            t.root().join("sys/devices/pci0000:00/0000:04:00.0"),
            nic.join("device"),
        )
        .unwrap();
        fs::write(
            t.root().join("proc/net/route"),
            "Iface\tDestination\tGateway\nlo\t0000007F\t00000000\neth0\t00000000\t0101A8C0\n",
        )
        .unwrap();
        let r = dry(&t, "03:00.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::VerdictNotMet);
        assert!(r.error.unwrap_or_default().contains("mounted on /"));
        let r = dry(&t, "04:00.0", &opts(false, false));
        assert!(r.error.unwrap_or_default().contains("default route (eth0)"));
        t.device("0000:05:00.0", "030000", Some("amdgpu"), 6);
        fs::write(
            t.root().join("sys/devices/pci0000:00/0000:05:00.0/boot_vga"),
            "1\n",
        )
        .unwrap();
        let r = dry(&t, "05:00.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::Success, "no framebuffer listed yet");
        fs::write(t.root().join("proc/fb"), "0 amdgpudrmfb\n").unwrap();
        let r = dry(&t, "05:00.0", &opts(false, false));
        assert!(r
            .error
            .unwrap_or_default()
            .contains("boot GPU and a framebuffer holds it"));
        let r = dry(&t, "04:00.0", &opts(false, true));
        assert_eq!(r.exit, ExitKind::Success);
        assert!(r.warnings.iter().any(|w| w.contains("--force")));
    }

    #[test]
    fn one_function_takes_the_cards_other_functions_in_its_group_but_not_other_slots() {
        let t = Tree::new();
        t.device("0000:01:00.0", "030000", Some("bochs-drm"), 6);
        t.device("0000:01:00.1", "040300", Some("snd_hda_intel"), 6);
        let r = dry(&t, "01:00.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::Success, "{:?}", r.error);
        let got: Vec<(String, &str)> = r.targets.iter().map(|t| (t.address.to_string(), t.why)).collect();
        assert_eq!(
            got,
            [
                ("0000:01:00.0".to_string(), "requested"),
                ("0000:01:00.1".to_string(), "card")
            ]
        );
        // A device of another slot in the same group still needs --group.
        t.device("0000:01:01.0", "020000", Some("e1000"), 6);
        let r = dry(&t, "01:00.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::VerdictNotMet);
        let msg = r.error.unwrap_or_default();
        assert!(
            msg.contains("0000:01:01.0 (e1000)") && !msg.contains("01:00.1"),
            "{msg}"
        );
        // The card's function in a group of its own (ACS between functions) is left alone.
        let t = Tree::new();
        t.device("0000:03:00.0", "030000", Some("amdgpu"), 8);
        t.device("0000:03:00.1", "040300", Some("snd_hda_intel"), 9);
        let r = dry(&t, "03:00.0", &opts(false, false));
        assert_eq!(r.exit, ExitKind::Success, "{:?}", r.error);
        assert_eq!(r.targets.len(), 1);
    }

    #[test]
    fn a_hanging_unbind_is_abandoned_after_the_timeout_and_the_device_left_alone() {
        let t = Tree::new();
        t.device("0000:06:00.0", "010802", Some("nvme"), 9);
        fs::create_dir_all(t.root().join("sys/bus/pci/drivers/vfio-pci")).unwrap();
        fs::write(t.root().join("sys/bus/pci/drivers_probe"), "").unwrap();
        // A FIFO without a reader: the write blocks the way a busy driver's unbind does.
        let unbind = t.root().join("sys/bus/pci/drivers/nvme/unbind");
        nix::unistd::mkfifo(&unbind, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let mut o = opts(false, false);
        o.dry_run = false;
        o.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let r = dry(&t, "06:00.0", &o);
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(r.exit, ExitKind::RollbackFailed, "{:?}", r.error);
        let e = r.error.unwrap_or_default();
        for want in [
            "driver/unbind is still blocked after 0.3 s",
            "nvme's remove() has not returned",
            "likely holders",
            "no driver and driver_override vfio-pci",
            "vfiotool bind 0000:06:00.0",
            "vfiotool unbind 0000:06:00.0",
        ] {
            assert!(e.contains(want), "{want:?} missing from: {e}");
        }
        assert!(!r.rolled_back);
        assert!(r.targets[0].blocked);
        let a = PciAddress::new(0, 6, 0, 0);
        // Left as the kernel will leave it: override vfio-pci, and the record kept for unbind.
        assert_eq!(
            fs::read_to_string(t.host().device_dir(&a).join("driver_override")).unwrap(),
            "vfio-pci"
        );
        assert!(state::load(&t.host(), &a).unwrap().is_some());
        // Let the abandoned writer finish.
        let mut got = String::new();
        std::io::Read::read_to_string(&mut fs::File::open(&unbind).unwrap(), &mut got).unwrap();
        assert_eq!(got, "0000:06:00.0");
    }

    #[test]
    fn a_bind_after_a_half_way_run_keeps_the_original_driver_on_record() {
        let t = Tree::new();
        // Left by a killed bind or a blocked unbind: no driver, override vfio-pci, a record.
        t.device("0000:07:00.0", "030000", None, 11);
        let a = PciAddress::new(0, 7, 0, 0);
        fs::write(t.host().device_dir(&a).join("driver_override"), "vfio-pci\n").unwrap();
        let old = Record {
            schema: state::RECORD_SCHEMA.into(),
            address: a.to_string(),
            driver: Some("amdgpu".into()),
            driver_override: None,
        };
        state::save(&t.host(), &old).unwrap();
        fs::create_dir_all(t.root().join("sys/bus/pci/drivers/vfio-pci")).unwrap();
        fs::write(t.root().join("sys/bus/pci/drivers_probe"), "").unwrap();
        let mut o = opts(false, false);
        o.dry_run = false;
        // The fake probe binds nothing, so the bind fails and rolls back to the record.
        let r = dry(&t, "07:00.0", &o);
        assert!(
            r.steps.iter().any(|s| s
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("kept from an earlier run")),
            "{:?}",
            r.steps
        );
        assert!(
            r.rollback_steps
                .iter()
                .any(|s| s.target.ends_with("drivers/amdgpu/bind")),
            "{:?}",
            r.rollback_steps
        );
    }
}
