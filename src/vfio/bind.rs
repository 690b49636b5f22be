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

use crate::error::PathError;
use crate::vfio::{Action, Outcome};
use std::collections::BTreeSet;

use super::attach::Group;
use super::exec::Executor;
use super::host::Host;
use super::ioctl::IommufdOps;
use super::proof;
use super::signals::Interrupted;
use super::state::{self, Record};
use super::{lock, Step};
use crate::error::ExitKind;
use crate::pci::address::{AddressSpec, PciAddress};

pub const VFIO_PCI: &str = "vfio-pci";

pub use super::guard::{host_critical, GuardError};
pub use super::report::{BindOptions, Report, Skipped, Target, SCHEMA};
pub use super::unbind::unbind;

use super::apply::*;
use super::guard::ensure_vfio_pci;
use super::report::{target, Why};
use super::unbind::restore_one;

/// Drivers that do not claim DMA ownership: a group member on one of them does not break viability.
pub(super) const HARMLESS: &[&str] = &["vfio-pci", "pci-stub", "pcieport"];

/// The functions a request names (every existing function of a slot).
/// The addresses that are not bridges; bridges go to `skipped` (they never change driver, and
/// pcieport does not break a group's viability).
pub(crate) fn without_bridges(
    host: &Host,
    found: Vec<PciAddress>,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<PciAddress>, PathError> {
    let mut rest = Vec::new();
    for a in found {
        // Fail closed: a function whose kind cannot be read is neither bound nor skipped.
        if host.is_bridge(&a)? {
            skipped.push(Skipped {
                address: a,
                reason: "PCI bridge: bridges are never bound".into(),
            });
        } else {
            rest.push(a);
        }
    }
    Ok(rest)
}

pub fn resolve(host: &Host, spec: &AddressSpec) -> crate::error::Result<Vec<PciAddress>> {
    let found = match spec {
        AddressSpec::Function(a) => {
            if host.exists(a)? {
                vec![*a]
            } else {
                Vec::new()
            }
        }
        AddressSpec::Slot(s) => host.slot_functions(s)?,
    };
    if found.is_empty() {
        return Err(crate::error::Error::system(format!(
            "no PCI device {spec} (nothing under {}); check the address with `lspci -D`",
            host.path("/sys/bus/pci/devices").display()
        )));
    }
    Ok(found)
}

/// The bind plan: targets, skipped devices, refusals, groups.
fn plan_bind(
    host: &Host,
    spec: &AddressSpec,
    opts: &BindOptions,
    r: &mut Report,
) -> crate::error::Result<()> {
    let found = resolve(host, spec)?;
    let chosen: BTreeSet<PciAddress> = without_bridges(host, found, &mut r.skipped)?
        .into_iter()
        .collect();
    if chosen.is_empty() {
        return Err(crate::error::Error::bad_input(format!(
            "{spec} is a PCI bridge; bridges are never bound to vfio-pci"
        )));
    }
    let mut groups = BTreeSet::new();
    for a in &chosen {
        match host.iommu_group(a)? {
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
        for m in host.group_members(*g)? {
            if chosen.contains(&m) {
                continue;
            }
            if host.is_bridge(&m)? {
                r.skipped.push(Skipped {
                    address: m,
                    reason: format!("PCI bridge in group {g}: left alone, does not affect viability"),
                });
                continue;
            }
            // Unreadable is an error, never "no driver" (which would count as harmless).
            let drv = host.driver(&m)?;
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
        r.targets.push(target(host, *a, Why::Requested)?);
    }
    for a in &card {
        r.targets.push(target(host, *a, Why::Card)?);
    }
    for a in &extra {
        r.targets.push(target(host, *a, Why::Group)?);
    }
    r.targets.sort_by_key(|t| t.address);
    for t in &r.targets {
        match host_critical(host, &t.address) {
            Ok(Some(why)) if opts.force => r.warnings.push(format!("--force: {why}")),
            Ok(Some(why)) => r.refused.push(format!("{why} (--force overrides)")),
            Ok(None) => {}
            // Not overridable: --force takes a device known to be in use, not one whose use
            // could not be read.
            Err(e) => r.refused.push(format!("{}: {e}", t.address)),
        }
    }
    Ok(())
}

/// Lock every IOMMU group the request touches (`none` for devices without a group). A group
/// member taken by `--group` is in one of these groups, so it is covered too.
pub(crate) fn lock_groups(host: &Host, spec: &AddressSpec) -> crate::error::Result<Vec<lock::GroupLock>> {
    let found = resolve(host, spec).unwrap_or_default();
    let mut names: Vec<String> = found
        .iter()
        .map(|a| {
            Ok(host
                .iommu_group(a)?
                .map_or_else(|| "none".to_string(), |g| g.to_string()))
        })
        .collect::<Result<_, PathError>>()?;
    names.sort();
    names.dedup();
    names.into_iter().map(|n| lock::lock_group(host, &n)).collect()
}

pub(crate) fn not_root() -> bool {
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
    if !opts.dry_run && host.is_live() && not_root() {
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
    if let Err(e) = plan_bind(host, spec, opts, &mut r) {
        return r.finish(e.kind, Some(e.message));
    }
    if !r.refused.is_empty() {
        let msg = format!("refused, nothing was changed: {}", r.refused.join("; "));
        return r.finish(ExitKind::VerdictNotMet, Some(msg));
    }
    let mut steps = Vec::new();
    if let Err(e) = ensure_vfio_pci(host, opts.dry_run, &mut steps) {
        r.steps = steps;
        return r.finish(e.kind, Some(e.message));
    }
    r.steps = steps;

    // The one executor: a dry run goes through the same steps and records them as planned.
    let exec = Executor::new(host, opts.dry_run);
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
                Action::Check,
                t.address.to_string(),
                Outcome::Skipped,
                Some("already on vfio-pci".into()),
            ));
            continue;
        }
        if !opts.dry_run {
            touched.push(i);
        }
        let orig = origin(host, &t);
        origins.insert(i, orig.0.clone());
        if let Err(e) = bind_one(&exec, &t, &orig, opts, &mut r.steps) {
            if let Some(pid) = e.blocked_pid() {
                note_lock_holder(host, &t.address, pid);
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
            let chosen = opts.backend.resolve(host, &devs, opts.dry_run, opts.open_device);
            r.warnings.extend(chosen.note);
            let target = Group {
                host,
                group: g,
                devices: &devs,
            };
            if opts.dry_run {
                r.steps
                    .extend(proof::planned_steps(chosen.backend, &target, opts.open_device));
            } else {
                let p = proof::prove(ops, chosen.backend, &target, opts.open_device, &mut r.steps);
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
    let unread = read_after(host, &mut r.targets, blocked);
    r.warnings.extend(unread);
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
        match restore_one(&exec, &t.address, Some(rec), opts.timeout, &mut rb) {
            Ok(_) => {
                if let Err(e) = state::remove(host, &t.address) {
                    r.warnings.push(record_left(&t.address, e));
                }
            }
            Err(e) => {
                complete = false;
                if let Some(pid) = e.blocked_pid() {
                    note_lock_holder(host, &t.address, pid);
                    blocked = blocked.or(Some(t.address));
                }
                r.warnings.push(e.message());
            }
        }
    }
    r.rollback_steps = rb;
    r.rolled_back = touched.iter().any(|&i| Some(r.targets[i].address) != blocked);
    let unread = read_after(host, &mut r.targets, blocked);
    r.warnings.extend(unread);
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

#[cfg(test)]
mod tests {
    use super::super::attach::BackendChoice;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    /// A fake host: devices with a class, an optional driver, a group; bridges get `pci_bus/`.
    struct Tree {
        dir: tempfile::TempDir,
    }

    impl Tree {
        /// No guard inputs at all (no /proc, no /sys/block).
        fn bare() -> Self {
            Tree {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        /// A host with the guard inputs of an idle machine: no block device, no mount, no route.
        fn new() -> Self {
            let t = Tree::bare();
            fs::create_dir_all(t.root().join("sys/block")).unwrap();
            fs::create_dir_all(t.root().join("proc/net")).unwrap();
            fs::write(t.root().join("proc/mounts"), "").unwrap();
            fs::write(t.root().join("proc/net/route"), "Iface\tDestination\n").unwrap();
            t
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
    fn an_unreadable_group_member_driver_refuses_instead_of_counting_as_no_driver() {
        let t = Tree::new();
        t.device("0000:01:00.0", "030000", None, 5);
        t.device("0000:02:00.0", "020000", None, 5);
        // `driver` is not a link (reading it fails with EINVAL): before, this read as "no
        // driver" and the member counted as harmless.
        fs::write(t.root().join("sys/devices/pci0000:00/0000:02:00.0/driver"), "").unwrap();
        let r = dry(&t, "01:00.0", &opts(false, false));
        assert_ne!(r.exit, ExitKind::Success, "{r:?}");
        let e = r.error.unwrap_or_default();
        assert!(e.contains("0000:02:00.0/driver"), "{e}");
        assert!(r.steps.is_empty(), "{:?}", r.steps);
        // The same for an unreadable class (the bridge rule needs it when config is short).
        let u = Tree::new();
        u.device("0000:01:00.0", "030000", None, 6);
        let d = u.root().join("sys/devices/pci0000:00/0000:01:00.0");
        fs::write(d.join("config"), [0u8; 4]).unwrap();
        fs::write(d.join("class"), "garbage\n").unwrap();
        let r = dry(&u, "01:00.0", &opts(false, false));
        let e = r.error.unwrap_or_default();
        assert!(
            e.contains("0000:01:00.0/class") && e.contains("not a hex number"),
            "{e}"
        );
        assert!(r.steps.is_empty(), "{:?}", r.steps);
    }

    #[test]
    fn a_device_that_cannot_be_looked_up_is_an_error_not_no_such_device() {
        // sys/bus/pci/devices is a file: every lookup below it fails with ENOTDIR, which must
        // name the path, not read as "no PCI device" (nor, for a slot, as fewer functions).
        let t = Tree::new();
        fs::create_dir_all(t.root().join("sys/bus/pci")).unwrap();
        fs::write(t.root().join("sys/bus/pci/devices"), "").unwrap();
        for spec in ["01:00.0", "01:00"] {
            let e = resolve(&t.host(), &AddressSpec::parse(spec).unwrap()).unwrap_err();
            assert!(e.message.contains("sys/bus/pci/devices"), "{spec}: {}", e.message);
            assert!(!e.message.contains("no PCI device"), "{spec}: {}", e.message);
        }
    }

    #[test]
    fn unbind_of_a_device_whose_driver_cannot_be_read_changes_nothing() {
        let t = Tree::new();
        t.device("0000:01:00.0", "030000", None, 5);
        let d = t.root().join("sys/devices/pci0000:00/0000:01:00.0");
        fs::write(d.join("driver"), "").unwrap();
        let spec = AddressSpec::parse("01:00.0").unwrap();
        let r = unbind(
            &t.host(),
            &spec,
            true,
            Duration::from_secs(1),
            &Interrupted::default(),
        );
        assert_eq!(r.exit, ExitKind::System, "{r:?}");
        let e = r.error.unwrap_or_default();
        assert!(
            e.contains("0000:01:00.0/driver") && e.contains("nothing was changed"),
            "{e}"
        );
        assert!(r.steps.is_empty(), "{:?}", r.steps);
    }

    #[test]
    fn an_unreadable_guard_input_refuses_and_names_the_path() {
        let t = Tree::new();
        t.device("0000:01:00.0", "010802", Some("nvme"), 3);
        let blk = t
            .root()
            .join("sys/devices/pci0000:00/0000:01:00.0/nvme/nvme0/nvme0n1");
        fs::create_dir_all(&blk).unwrap();
        symlink(&blk, t.root().join("sys/block/nvme0n1")).unwrap();
        // /proc/mounts unreadable: a FIFO (reading it would block) stands for any read error.
        fs::remove_file(t.root().join("proc/mounts")).unwrap();
        nix::unistd::mkfifo(&t.root().join("proc/mounts"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        for force in [false, true] {
            let r = dry(&t, "01:00.0", &opts(false, force));
            assert_eq!(r.exit, ExitKind::VerdictNotMet, "{:?}", r.error);
            let e = r.error.unwrap_or_default();
            assert!(e.contains("proc/mounts") && e.contains("refusing"), "{e}");
            assert!(r.steps.is_empty(), "{:?}", r.steps);
        }
        // No /sys/block at all: refused too, naming it.
        let b = Tree::bare();
        b.device("0000:01:00.0", "010802", Some("nvme"), 3);
        let r = dry(&b, "01:00.0", &opts(false, false));
        assert!(r.error.unwrap_or_default().contains("sys/block"));
    }

    /// The ioctl names a dry run plans.
    fn planned_ioctls(r: &Report) -> Vec<String> {
        r.steps
            .iter()
            .filter(|s| s.action == Action::Ioctl)
            .filter_map(|s| s.value.clone())
            .collect()
    }

    /// A kernel with iommufd and the device cdev (what a dry run looks for).
    fn with_cdev(t: &Tree) {
        fs::create_dir_all(t.root().join("dev")).unwrap();
        fs::write(t.root().join("dev/iommu"), "").unwrap();
        fs::create_dir_all(t.root().join("sys/class/vfio-dev")).unwrap();
    }

    #[test]
    fn auto_keeps_a_reset_bug_gpu_off_the_cdev_and_says_why() {
        let t = Tree::new();
        t.device("0000:01:00.0", "030000", Some("amdgpu"), 3);
        // An RX 5700 XT (Navi 10): check's reset table lists it.
        let d = t.root().join("sys/devices/pci0000:00/0000:01:00.0");
        fs::write(d.join("vendor"), "0x1002\n").unwrap();
        fs::write(d.join("device"), "0x731f\n").unwrap();
        with_cdev(&t);
        let mut o = opts(false, false);
        o.backend = BackendChoice::Auto;
        let r = dry(&t, "01:00.0", &o);
        assert_eq!(r.exit, ExitKind::Success, "{:?}", r.error);
        let n = planned_ioctls(&r);
        assert!(n.contains(&"VFIO_SET_IOMMU".to_string()), "{n:?}");
        assert!(
            !n.iter().any(|v| v.starts_with("VFIO_DEVICE_BIND_IOMMUFD")),
            "{n:?}"
        );
        let why = r.warnings.join("\n");
        assert!(
            why.contains("0000:01:00.0 (AMD Navi 10)")
                && why.contains("reset bug")
                && why.contains("--backend iommufd"),
            "{why}"
        );
        // Asked for explicitly, the cdev is used anyway, with nothing to explain.
        o.backend = BackendChoice::Iommufd;
        let r = dry(&t, "01:00.0", &o);
        assert!(planned_ioctls(&r)
            .iter()
            .any(|v| v.starts_with("VFIO_DEVICE_BIND_IOMMUFD")));
        assert!(
            r.warnings.iter().all(|w| !w.contains("reset bug")),
            "{:?}",
            r.warnings
        );
        // --open-device opens (and resets) it on the legacy path too: no reason to avoid the cdev.
        o.backend = BackendChoice::Auto;
        o.open_device = true;
        let r = dry(&t, "01:00.0", &o);
        assert!(planned_ioctls(&r)
            .iter()
            .any(|v| v.starts_with("VFIO_DEVICE_BIND_IOMMUFD")));
        // A GPU outside the table takes the cdev under auto.
        fs::write(d.join("device"), "0x73bf\n").unwrap();
        o.open_device = false;
        let r = dry(&t, "01:00.0", &o);
        assert!(planned_ioctls(&r)
            .iter()
            .any(|v| v.starts_with("VFIO_DEVICE_BIND_IOMMUFD")));
        assert!(
            r.warnings.iter().all(|w| !w.contains("reset bug")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn dry_run_plans_the_backend_asked_for_and_auto_follows_the_kernel() {
        let t = Tree::new();
        t.device("0000:01:00.0", "030000", Some("amdgpu"), 3);
        let names = planned_ioctls;
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
        with_cdev(&t);
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
        assert!(
            r.steps.iter().all(|s| s.result == Outcome::Planned),
            "{:?}",
            r.steps
        );
        assert!(r
            .steps
            .iter()
            .any(|s| s.target.ends_with("0000:01:00.1/driver/unbind")));
        assert!(r
            .steps
            .iter()
            .any(|s| s.value.as_deref() == Some("VFIO_SET_IOMMU")));
        // Nothing was written.
        assert_eq!(
            t.host().driver_override(&PciAddress::new(0, 1, 0, 0)).unwrap(),
            None
        );
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
        assert_eq!(r.targets.iter().filter(|t| t.why == Why::Group).count(), 2);
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
        let got: Vec<(String, Why)> = r.targets.iter().map(|t| (t.address.to_string(), t.why)).collect();
        assert_eq!(
            got,
            [
                ("0000:01:00.0".to_string(), Why::Requested),
                ("0000:01:00.1".to_string(), Why::Card)
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
