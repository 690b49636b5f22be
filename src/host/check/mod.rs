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

mod devices;
mod display;
pub(crate) mod facts;
mod initramfs;
mod iommufd;
mod kernel_log;
mod modules;
mod platform;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::host::bootloader::BootLoader;
use crate::host::HostRoot;
use crate::pci::groups::Groups;
use crate::vfio::attach::{self, AttachError, AttachFacts, Backend};
use crate::vfio::host::Host as VfioHost;
use crate::vfio::ioctl::IommufdOps;

use display::*;
use facts::gather;
use initramfs::*;
pub(crate) use iommufd::libvirt_schema_has_iommufd;
use modules::*;
use platform::*;

pub const SCHEMA: &str = "vfiotool.check/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not checked: what it needs could not be read (the message says what).
    Skipped,
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
/// vfio-pci, open the container and the group under `host`'s `/dev/vfio`, attach the group and
/// call `VFIO_SET_IOMMU` (TYPE1v2 when offered, else TYPE1). It never opens a device fd, so no
/// device is reset; the fds close (and the container is released) when this returns.
pub fn probe_set_iommu<V: IommufdOps>(ops: &V, host: &VfioHost, groups: &Groups) -> IrProbe {
    let candidate = groups.groups.iter().find(|g| {
        let mut endpoints = g.endpoints().peekable();
        endpoints.peek().is_some() && g.endpoints().all(|d| d.driver.as_deref() == Some("vfio-pci"))
    });
    let Some(g) = candidate else {
        return IrProbe::NotTested("no group bound to vfio-pci".into());
    };
    let group = g.group;
    // The one attach sequence (bind's proof uses it too): only a refusal at SET_CONTAINER or
    // SET_IOMMU is a finding; a step before it means the test could not run.
    let mut facts = AttachFacts::default();
    let mut steps = Vec::new();
    // Always the legacy backend: SET_IOMMU is the type1 test of interrupt remapping, and it
    // opens no device (a cdev bind would reset it).
    let devices: Vec<_> = g.endpoints().map(|d| d.address).collect();
    let target = attach::Group {
        host,
        group,
        devices: &devices,
    };
    match attach::attach(ops, Backend::Legacy, &target, &mut facts, &mut steps) {
        Ok(_) => IrProbe::Passed { group },
        Err(e) => match e {
            AttachError::SetContainer { .. } | AttachError::SetIommu { .. } => IrProbe::Refused {
                group,
                error: format!("{}: {}", e.step().name(), source_text(&e)),
            },
            AttachError::OpenGroup { ref source, .. } if source.raw_os_error() == Some(nix::libc::EBUSY) => {
                IrProbe::NotTested(format!("group {group} is in use (a VM holds it)"))
            }
            AttachError::NotViable { .. } => IrProbe::NotTested(format!("group {group} is not viable")),
            AttachError::OpenContainer { .. }
            | AttachError::ApiVersion { .. }
            | AttachError::NoType1
            | AttachError::OpenGroup { .. }
            | AttachError::GroupStatus { .. }
            | AttachError::Cdev(_) => IrProbe::NotTested(format!("group {group}: {e}")),
        },
    }
}

/// The kernel's error of a failed call, without the advice `AttachError` adds (check words its
/// own finding and fix).
fn source_text(e: &AttachError) -> String {
    match e {
        AttachError::SetContainer { source, .. } | AttachError::SetIommu { source, .. } => source.to_string(),
        other => other.to_string(),
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

fn skipped(id: &'static str, why: impl Into<String>) -> Check {
    Check {
        id,
        status: Status::Skipped,
        message: why.into(),
        fix: None,
        needed: false,
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
        check_initramfs(root, &f),
        check_stale_driver(root, &f),
        check_blacklist_lines(root, &f),
        check_kvm_msrs(root),
    ];
    let mut checks = checks;
    checks.extend(devices::checks(root, &f));
    checks.extend(kernel_log::checks(&f));
    checks.extend(iommufd::checks(root));
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

/// Drop repeated entries, keeping the first of each in place (`Vec::dedup` only drops
/// adjacent repeats, so the same fix reached from two devices was printed twice).
pub(crate) fn unique(items: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}
