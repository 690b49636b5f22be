//! The one VFIO attach sequence: what QEMU does before it can map guest memory for a group.
//! Used by the bind proof (`proof.rs`), `rom dump --via vfio` (`romdump.rs`) and check's
//! definitive interrupt-remapping test (`host/check`), so all three open, retry, check and
//! explain the same way.
//!
//! Legacy (container/group) backend, in order: open the container (`/dev/vfio/vfio`),
//! `VFIO_GET_API_VERSION` (must be 0), `VFIO_CHECK_EXTENSION` (TYPE1, TYPE1v2), open the group
//! node (`/dev/vfio/N`, retried for up to 1 s while devtmpfs creates it after a bind),
//! `VFIO_GROUP_GET_STATUS` (viable), `VFIO_GROUP_SET_CONTAINER`, `VFIO_SET_IOMMU` (TYPE1v2 when
//! offered). Each call is one [`Step`]; the first failure is an [`AttachError`] that names the
//! step, and [`AttachFacts`] keeps what was learnt before it.
//!
//! iommufd backend (kernel 6.6+, `iommufd.rs`): open `/dev/iommu`, `IOMMU_IOAS_ALLOC`, then for
//! every device of the group find its cdev (`/sys/bus/pci/devices/BDF/vfio-dev/vfioN`), open
//! `/dev/vfio/devices/vfioN`, `VFIO_DEVICE_BIND_IOMMUFD` (this opens the device: vfio-pci resets
//! it) and `VFIO_DEVICE_ATTACH_IOMMUFD_PT` to the IOAS. Its steps go into the same step list; its
//! failure is [`AttachError::Cdev`], with the EPERM/EBUSY causes read from sysfs and /proc.
//!
//! # Backend seam
//! Callers name a [`Backend`] (resolved from `--backend` by [`BackendChoice::resolve`]) and get
//! back an [`Attached`] handle set; they never issue the container or iommufd ioctls themselves,
//! and [`planned_steps`] gives `--dry-run` the same steps from the same lists.

use crate::vfio::Outcome;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::host::Host;
use super::ioctl::{self, IommufdOps, VfioOps};
use super::iommufd::{self, CdevError, CdevStep, Session};
use super::Step;
use crate::pci::address::PciAddress;

/// Which kernel interface attaches the group (the JSON `backend` of a proof).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The VFIO container/group interface (`/dev/vfio/vfio`, `/dev/vfio/N`), every kernel.
    #[default]
    Legacy,
    /// iommufd and the device cdev: `/dev/iommu` and `/dev/vfio/devices/vfioN` (6.6+).
    Iommufd,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Legacy => "legacy",
            Backend::Iommufd => "iommufd",
        }
    }
}

/// The `--backend` of bind and `rom dump --via vfio`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendChoice {
    Legacy,
    Iommufd,
    /// iommufd when the kernel has the cdev for these devices, legacy otherwise, and legacy for
    /// a device known to have the AMD reset bug when the caller would not open it anyway.
    #[default]
    Auto,
}

/// What [`BackendChoice::resolve`] chose, and why when `auto` did not take the cdev it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub backend: Backend,
    pub note: Option<String>,
}

impl BackendChoice {
    /// The backend for `devices` (on vfio-pci by now, except in a dry run, where the kernel's
    /// vfio-dev class stands in for the devices' own vfio-dev/ directories). `opens_device`:
    /// the caller opens the devices on either backend (`rom dump`, `bind --open-device`).
    ///
    /// Binding a cdev to iommufd opens the device, which makes vfio-pci reset it; the legacy
    /// proof does not. A GPU of the AMD reset-bug families (check's `reset` table) can come back
    /// dead from that reset, so `auto` keeps the legacy path for it and says why; `--backend
    /// iommufd` still uses the cdev.
    pub fn resolve(self, host: &Host, devices: &[PciAddress], dry_run: bool, opens_device: bool) -> Resolved {
        let pick = |backend| Resolved { backend, note: None };
        match self {
            BackendChoice::Legacy => pick(Backend::Legacy),
            BackendChoice::Iommufd => pick(Backend::Iommufd),
            BackendChoice::Auto => {
                let cdev = if dry_run {
                    host.path("/dev/iommu").exists() && host.path("/sys/class/vfio-dev").is_dir()
                } else {
                    !devices.is_empty() && devices.iter().all(|d| iommufd::available(host, d))
                };
                if !cdev {
                    return pick(Backend::Legacy);
                }
                if opens_device {
                    return pick(Backend::Iommufd);
                }
                let mut bugged = Vec::new();
                for d in devices {
                    match host.ids(d) {
                        Ok((v, id)) => bugged.extend(
                            crate::host::devfacts::amd_reset_bug_family(v, id).map(|f| format!("{d} (AMD {f})")),
                        ),
                        // Fail closed: a device whose IDs cannot be read may be of a reset-bug
                        // family, so it keeps the path that does not open it.
                        Err(e) => {
                            return Resolved {
                                backend: Backend::Legacy,
                                note: Some(format!(
                                    "backend auto: the kernel has the VFIO device cdev, but whether {d} has the \
                                     AMD reset bug cannot be known ({e}); proved through the legacy path, which \
                                     does not open the device"
                                )),
                            }
                        }
                    }
                }
                if bugged.is_empty() {
                    return pick(Backend::Iommufd);
                }
                Resolved {
                    backend: Backend::Legacy,
                    note: Some(format!(
                        "backend auto: the kernel has the VFIO device cdev, but {} has the AMD reset bug and \
                         binding the cdev to iommufd opens the device, which makes vfio-pci reset it (it can \
                         come back dead until the host reboots); proved through the legacy path, which does \
                         not open it; --backend iommufd uses the cdev anyway",
                        bugged.join(", ")
                    )),
                }
            }
        }
    }
}

/// The group the sequence attaches: its number, its devices (all on vfio-pci) and the host
/// whose `/dev` and `/sys` it uses.
#[derive(Clone, Copy)]
pub struct Group<'a> {
    pub host: &'a Host,
    pub group: u32,
    pub devices: &'a [PciAddress],
}

/// One call of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachStep {
    OpenContainer,
    ApiVersion,
    CheckExtension,
    OpenGroup,
    GroupStatus,
    SetContainer,
    SetIommu,
    /// A step of the iommufd backend.
    Cdev(CdevStep),
}

impl AttachStep {
    /// The step name in reports (kept from the earlier JSON: `open`, `VFIO_GET_API_VERSION`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AttachStep::OpenContainer | AttachStep::OpenGroup => "open",
            AttachStep::ApiVersion => "VFIO_GET_API_VERSION",
            AttachStep::CheckExtension => "VFIO_CHECK_EXTENSION(TYPE1, TYPE1v2)",
            AttachStep::GroupStatus => "VFIO_GROUP_GET_STATUS",
            AttachStep::SetContainer => "VFIO_GROUP_SET_CONTAINER",
            AttachStep::SetIommu => "VFIO_SET_IOMMU",
            AttachStep::Cdev(s) => s.name(),
        }
    }

    /// Is this call about the group node (else the container)?
    fn on_group(self) -> bool {
        match self {
            AttachStep::OpenGroup | AttachStep::GroupStatus | AttachStep::SetContainer => true,
            AttachStep::OpenContainer
            | AttachStep::ApiVersion
            | AttachStep::CheckExtension
            | AttachStep::SetIommu
            | AttachStep::Cdev(_) => false,
        }
    }

    const LEGACY: [AttachStep; 7] = [
        AttachStep::OpenContainer,
        AttachStep::ApiVersion,
        AttachStep::CheckExtension,
        AttachStep::OpenGroup,
        AttachStep::GroupStatus,
        AttachStep::SetContainer,
        AttachStep::SetIommu,
    ];
}

/// Why the sequence stopped.
#[derive(Debug)]
pub enum AttachError {
    /// The container node could not be opened (vfio not loaded, not root).
    OpenContainer {
        path: String,
        source: io::Error,
    },
    /// `VFIO_GET_API_VERSION` failed or returned something other than 0.
    ApiVersion {
        version: Option<i32>,
        source: Option<io::Error>,
    },
    /// Neither TYPE1 nor TYPE1v2 is offered (vfio_iommu_type1 not loaded).
    NoType1,
    /// The group node could not be opened (EBUSY: a VM holds it; ENOENT: nothing on vfio-pci).
    OpenGroup {
        path: String,
        source: io::Error,
    },
    GroupStatus {
        path: String,
        source: io::Error,
    },
    /// The kernel says the group is not viable (a member on a host driver).
    NotViable {
        group: u32,
        flags: u32,
    },
    SetContainer {
        path: String,
        source: io::Error,
    },
    /// EPERM here means no interrupt remapping.
    SetIommu {
        path: String,
        source: io::Error,
    },
    /// A step of the iommufd backend failed (with the EPERM/EBUSY causes found).
    Cdev(CdevError),
}

impl AttachError {
    pub fn step(&self) -> AttachStep {
        match self {
            AttachError::OpenContainer { .. } => AttachStep::OpenContainer,
            AttachError::ApiVersion { .. } => AttachStep::ApiVersion,
            AttachError::NoType1 => AttachStep::CheckExtension,
            AttachError::OpenGroup { .. } => AttachStep::OpenGroup,
            AttachError::GroupStatus { .. } | AttachError::NotViable { .. } => AttachStep::GroupStatus,
            AttachError::SetContainer { .. } => AttachStep::SetContainer,
            AttachError::SetIommu { .. } => AttachStep::SetIommu,
            AttachError::Cdev(e) => AttachStep::Cdev(e.step),
        }
    }

    /// The errno of the failed call, if it was one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            AttachError::OpenContainer { source, .. }
            | AttachError::OpenGroup { source, .. }
            | AttachError::GroupStatus { source, .. }
            | AttachError::SetContainer { source, .. }
            | AttachError::SetIommu { source, .. } => source.raw_os_error(),
            AttachError::ApiVersion { source, .. } => source.as_ref().and_then(io::Error::raw_os_error),
            AttachError::NoType1 | AttachError::NotViable { .. } => None,
            AttachError::Cdev(e) => e.errno,
        }
    }
}

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttachError::OpenContainer { path, source } => {
                write!(f, "{path}: {source}; is the vfio module loaded?")
            }
            AttachError::ApiVersion {
                version: Some(v), ..
            } => write!(f, "VFIO API version {v}, expected {}", ioctl::API_VERSION),
            AttachError::ApiVersion { source, .. } => match source {
                Some(e) => write!(f, "{e}"),
                None => write!(f, "no VFIO API version"),
            },
            AttachError::NoType1 => write!(f, "the kernel offers no type1 IOMMU backend; load vfio_iommu_type1"),
            AttachError::OpenGroup { path, source } => {
                let hint = match source.raw_os_error() {
                    Some(nix::libc::EBUSY) => "; another process (a running VM?) holds the group",
                    Some(nix::libc::ENOENT) => "; no device of the group is bound to vfio-pci",
                    _ => "",
                };
                write!(f, "{path}: {source}{hint}")
            }
            AttachError::GroupStatus { source, .. } => write!(f, "{source}"),
            AttachError::NotViable { group, flags } => write!(
                f,
                "IOMMU group {group} is not viable (flags {flags:#x}): a device of the group is still \
                 on a host driver; bind the whole group (--group) or move that device"
            ),
            AttachError::SetContainer { source, .. } => match source.raw_os_error() {
                Some(nix::libc::EPERM) => write!(f, "{source}: the group is not viable"),
                _ => write!(f, "{source}"),
            },
            AttachError::SetIommu { source, .. } => match source.raw_os_error() {
                Some(nix::libc::EPERM) => write!(
                    f,
                    "{source}: no interrupt remapping (dmesg: \"No interrupt remapping support\"). Fix: enable \
                     interrupt remapping (VT-d/AMD-Vi in firmware, no intremap=off on the kernel command \
                     line). vfio_iommu_type1.allow_unsafe_interrupts=1 makes it work but lets a device \
                     inject arbitrary interrupts (MSI) into the host: only for trusted guests"
                ),
                _ => write!(f, "{source}"),
            },
            AttachError::Cdev(e) => write!(f, "{e}"),
        }
    }
}

/// What the sequence learnt, also when it stopped early.
#[derive(Debug, Clone, Default)]
pub struct AttachFacts {
    pub api_version: Option<i32>,
    pub type1: bool,
    pub type1v2: bool,
    /// `VFIO_GROUP_FLAGS_VIABLE` as the kernel reported it.
    pub viable: bool,
    pub container_set: bool,
    pub iommu_set: Option<&'static str>,
}

/// What the sequence leaves open, attached. Dropping it closes the fds (and so detaches).
pub enum Attached<F> {
    /// The container and group: device fds come from `group`.
    Legacy { container: F, group: F },
    /// The iommufd and every device's cdev, bound and attached to one IOAS.
    Iommufd(Session<F>),
}

fn node_paths(dev_vfio: &Path, group: u32) -> (String, String) {
    (
        dev_vfio.join("vfio").display().to_string(),
        dev_vfio.join(group.to_string()).display().to_string(),
    )
}

/// The steps [`attach`] would record, for `--dry-run` (same names and targets).
pub fn planned_steps(backend: Backend, target: &Group) -> Vec<Step> {
    let (c, g) = node_paths(&target.host.path("/dev/vfio"), target.group);
    match backend {
        Backend::Iommufd => iommufd::planned_steps(target.host, target.devices),
        Backend::Legacy => AttachStep::LEGACY
            .iter()
            .map(|s| {
                Step::ioctl(
                    s.name(),
                    if s.on_group() { &g } else { &c },
                    Outcome::Planned,
                    None,
                )
            })
            .collect(),
    }
}

/// Run the attach sequence for `target` through `backend`, recording each call in `steps` and
/// what it learnt in `facts`.
pub fn attach<V: IommufdOps>(
    ops: &V,
    backend: Backend,
    target: &Group,
    facts: &mut AttachFacts,
    steps: &mut Vec<Step>,
) -> Result<Attached<V::Fd>, AttachError> {
    match backend {
        Backend::Legacy => legacy(ops, &target.host.path("/dev/vfio"), target.group, facts, steps),
        Backend::Iommufd => iommufd::attach_group(ops, target.host, target.devices, steps)
            .map(|s| {
                facts.viable = true;
                Attached::Iommufd(s)
            })
            .map_err(AttachError::Cdev),
    }
}

fn record<T>(
    steps: &mut Vec<Step>,
    step: AttachStep,
    target: &str,
    r: Result<(T, String), AttachError>,
) -> Result<T, AttachError> {
    match r {
        Ok((v, detail)) => {
            steps.push(Step::ioctl(
                step.name(),
                target,
                Outcome::Ok,
                (!detail.is_empty()).then_some(detail),
            ));
            Ok(v)
        }
        Err(e) => {
            steps.push(Step::ioctl(
                step.name(),
                target,
                Outcome::Failed,
                Some(e.to_string()),
            ));
            Err(e)
        }
    }
}

fn legacy<V: VfioOps>(
    ops: &V,
    dev_vfio: &Path,
    group: u32,
    facts: &mut AttachFacts,
    steps: &mut Vec<Step>,
) -> Result<Attached<V::Fd>, AttachError> {
    let (c, g) = node_paths(dev_vfio, group);
    let container = record(
        steps,
        AttachStep::OpenContainer,
        &c,
        ops.open(&dev_vfio.join("vfio"))
            .map(|fd| (fd, String::new()))
            .map_err(|source| AttachError::OpenContainer {
                path: c.clone(),
                source,
            }),
    )?;
    let version = match ops.api_version(&container) {
        Ok(v) if v == ioctl::API_VERSION => Ok((v, v.to_string())),
        Ok(v) => Err(AttachError::ApiVersion {
            version: Some(v),
            source: None,
        }),
        Err(e) => Err(AttachError::ApiVersion {
            version: None,
            source: Some(e),
        }),
    };
    facts.api_version = Some(record(steps, AttachStep::ApiVersion, &c, version)?);
    facts.type1 = ops
        .check_extension(&container, ioctl::TYPE1_IOMMU)
        .unwrap_or(false);
    facts.type1v2 = ops
        .check_extension(&container, ioctl::TYPE1V2_IOMMU)
        .unwrap_or(false);
    let ext = if facts.type1 || facts.type1v2 {
        Ok(((), format!("TYPE1={} TYPE1v2={}", facts.type1, facts.type1v2)))
    } else {
        Err(AttachError::NoType1)
    };
    record(steps, AttachStep::CheckExtension, &c, ext)?;

    // devtmpfs creates the group node when vfio-pci binds; give udev-less systems a moment.
    let gpath = dev_vfio.join(group.to_string());
    let mut opened = ops.open(&gpath);
    for _ in 0..20 {
        match &opened {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                opened = ops.open(&gpath);
            }
            _ => break,
        }
    }
    let group_fd = record(
        steps,
        AttachStep::OpenGroup,
        &g,
        opened
            .map(|fd| (fd, String::new()))
            .map_err(|source| AttachError::OpenGroup {
                path: g.clone(),
                source,
            }),
    )?;
    let status = match ops.group_status(&group_fd) {
        Ok(f) if f & ioctl::GROUP_FLAGS_VIABLE != 0 => Ok(((), format!("flags {f:#x}: viable"))),
        Ok(flags) => Err(AttachError::NotViable { group, flags }),
        Err(source) => Err(AttachError::GroupStatus {
            path: g.clone(),
            source,
        }),
    };
    facts.viable = status.is_ok();
    record(steps, AttachStep::GroupStatus, &g, status)?;
    record(
        steps,
        AttachStep::SetContainer,
        &g,
        ops.set_container(&group_fd, &container)
            .map(|_| ((), String::new()))
            .map_err(|source| AttachError::SetContainer {
                path: g.clone(),
                source,
            }),
    )?;
    facts.container_set = true;
    let (kind, name) = if facts.type1v2 {
        (ioctl::TYPE1V2_IOMMU, "TYPE1v2")
    } else {
        (ioctl::TYPE1_IOMMU, "TYPE1")
    };
    record(
        steps,
        AttachStep::SetIommu,
        &c,
        ops.set_iommu(&container, kind)
            .map(|_| ((), name.to_string()))
            .map_err(|source| AttachError::SetIommu {
                path: c.clone(),
                source,
            }),
    )?;
    facts.iommu_set = Some(name);
    Ok(Attached::Legacy {
        container,
        group: group_fd,
    })
}

#[cfg(test)]
mod tests {
    use super::super::proof::fake::FakeVfio;
    use super::*;

    fn group(host: &Host, group: u32) -> Group<'_> {
        Group {
            host,
            group,
            devices: &[],
        }
    }

    #[test]
    fn the_plan_names_the_steps_the_run_records() {
        let fake = FakeVfio {
            group_flags: 1,
            ..Default::default()
        };
        let host = Host::at("/x");
        let g = group(&host, 7);
        let mut facts = AttachFacts::default();
        let mut steps = Vec::new();
        attach(&fake, Backend::Legacy, &g, &mut facts, &mut steps).unwrap();
        let plan = planned_steps(Backend::Legacy, &g);
        let key = |s: &Step| (s.action, s.target.clone(), s.value.clone());
        assert_eq!(
            steps.iter().map(key).collect::<Vec<_>>(),
            plan.iter().map(key).collect::<Vec<_>>()
        );
        assert_eq!(facts.iommu_set, Some("TYPE1v2"));
        assert!(plan.iter().any(|s| s.target == "/x/dev/vfio/7"));
    }

    #[test]
    fn a_wrong_api_version_stops_before_the_group_is_opened() {
        let fake = FakeVfio {
            group_flags: 1,
            api_version: 1,
            ..Default::default()
        };
        let mut facts = AttachFacts::default();
        let mut steps = Vec::new();
        let host = Host::at("/");
        let e = attach(&fake, Backend::Legacy, &group(&host, 3), &mut facts, &mut steps)
            .err()
            .unwrap();
        assert_eq!(e.step(), AttachStep::ApiVersion);
        assert!(e.to_string().contains("VFIO API version 1, expected 0"), "{e}");
        assert!(!fake.calls.borrow().iter().any(|c| c.ends_with("/3")));
        assert_eq!(steps.last().map(|s| s.result), Some(Outcome::Failed));
    }

    #[test]
    fn not_viable_is_its_own_error_with_the_flags() {
        let fake = FakeVfio::default();
        let mut facts = AttachFacts::default();
        let mut steps = Vec::new();
        let host = Host::at("/");
        let e = attach(&fake, Backend::Legacy, &group(&host, 3), &mut facts, &mut steps)
            .err()
            .unwrap();
        assert!(
            matches!(e, AttachError::NotViable { group: 3, flags: 0 }),
            "{e:?}"
        );
        assert!(!facts.viable && !facts.container_set);
    }
}
