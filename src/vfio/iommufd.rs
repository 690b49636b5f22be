//! The iommufd backend of the one attach sequence (`attach.rs`): the VFIO device cdev
//! (`/dev/vfio/devices/vfioN`, Linux 6.6+) bound to an iommufd (`/dev/iommu`), the interface
//! QEMU 9+ uses with `-object iommufd`.
//!
//! The sequence is the one the kernel documents (Documentation/driver-api/vfio.rst, "cdev"):
//! open `/dev/iommu`, `IOMMU_IOAS_ALLOC`, then per device: find its cdev (through
//! `/sys/bus/pci/devices/BDF/vfio-dev/vfioN`, checked by its major:minor), open it,
//! `VFIO_DEVICE_BIND_IOMMUFD`, `VFIO_DEVICE_ATTACH_IOMMUFD_PT` to the IOAS ([`attach_group`],
//! called by `attach::attach` only). The proof then reads each device's info and ROM region and
//! detaches ([`inspect`]). Each call is one [`Step`] in the caller's step list; the first failure
//! is a [`CdevError`] naming its [`CdevStep`]. EPERM and EBUSY from the bind have several causes
//! the errno does not tell apart; [`explain`] reads the sysfs and /proc facts that do.
//!
//! Binding the cdev opens the device, which makes vfio-pci reset it (as QEMU does when it starts).

use crate::host::intremap;
use std::path::PathBuf;

use serde::Serialize;

use super::host::Host;
use super::ioctl::{self, DeviceInfo, IommufdOps};
use super::{Outcome, Step};
use crate::pci::address::PciAddress;

// Drivers that do not claim DMA ownership: a group member on one of them does not make the
// kernel refuse the group (bind's viability check uses the same list).
use super::bind::HARMLESS;

/// The steps of the cdev sequence, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CdevStep {
    OpenIommu,
    IoasAlloc,
    FindCdev,
    OpenCdev,
    BindIommufd,
    AttachPt,
    GetInfo,
    RomRegion,
    DetachPt,
}

impl CdevStep {
    /// The name a step is recorded under.
    pub fn name(self) -> &'static str {
        match self {
            CdevStep::OpenIommu => "open",
            CdevStep::IoasAlloc => "IOMMU_IOAS_ALLOC",
            CdevStep::FindCdev => "find cdev",
            CdevStep::OpenCdev => "open",
            CdevStep::BindIommufd => "VFIO_DEVICE_BIND_IOMMUFD (resets the device)",
            CdevStep::AttachPt => "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
            CdevStep::GetInfo => "VFIO_DEVICE_GET_INFO",
            CdevStep::RomRegion => "VFIO_DEVICE_GET_REGION_INFO(ROM)",
            CdevStep::DetachPt => "VFIO_DEVICE_DETACH_IOMMUFD_PT",
        }
    }

    /// Per device, what [`attach_group`] calls, then what [`inspect`] calls (info and ROM
    /// region per device, then every detach).
    const ATTACH: [CdevStep; 4] = [
        CdevStep::FindCdev,
        CdevStep::OpenCdev,
        CdevStep::BindIommufd,
        CdevStep::AttachPt,
    ];
    const INSPECT: [CdevStep; 2] = [CdevStep::GetInfo, CdevStep::RomRegion];
}

/// One failed step of the cdev sequence, with what sysfs and /proc say about why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdevError {
    pub step: CdevStep,
    /// The device (or `/dev/iommu`, or the cdev node) the step was about.
    pub target: String,
    /// The errno the kernel returned (None for a step that is not a system call).
    pub errno: Option<i32>,
    pub message: String,
    /// The causes found for EPERM / EBUSY, each with its fix; empty for other errors.
    pub causes: Vec<String>,
}

impl std::fmt::Display for CdevError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.target, self.step.name(), self.message)?;
        for c in &self.causes {
            write!(f, "; {c}")?;
        }
        Ok(())
    }
}

/// What the cdev sequence showed for one device.
#[derive(Debug, Clone, Serialize)]
pub struct CdevProof {
    pub address: PciAddress,
    /// `vfioN` under the device's `vfio-dev/`.
    pub cdev: Option<String>,
    pub ioas_id: Option<u32>,
    pub devid: Option<u32>,
    /// What ATTACH returned: the hardware page table the kernel made for the IOAS.
    pub hwpt_id: Option<u32>,
    pub info: Option<DeviceInfo>,
    pub rom_region_size: Option<u64>,
    pub detached: bool,
}

/// One device's cdev, bound to the session's iommufd and attached to its IOAS.
pub struct CdevDevice<F> {
    pub address: PciAddress,
    /// `vfioN`.
    pub cdev: String,
    pub fd: F,
    pub devid: u32,
    pub hwpt_id: u32,
}

/// The devices of a group bound to one iommufd and attached to one fresh IOAS. Dropping it
/// closes the cdevs, which detaches and unbinds them in the kernel.
pub struct Session<F> {
    pub iommufd: F,
    pub ioas_id: u32,
    pub devices: Vec<CdevDevice<F>>,
}

fn record<T>(
    steps: &mut Vec<Step>,
    step: CdevStep,
    target: &str,
    r: std::io::Result<T>,
    detail: impl FnOnce(&T) -> String,
) -> Result<T, CdevError> {
    match r {
        Ok(v) => {
            let d = detail(&v);
            steps.push(Step::ioctl(
                step.name(),
                target,
                Outcome::Ok,
                (!d.is_empty()).then_some(d),
            ));
            Ok(v)
        }
        Err(e) => {
            let err = CdevError {
                step,
                target: target.to_string(),
                errno: e.raw_os_error(),
                message: e.to_string(),
                causes: Vec::new(),
            };
            steps.push(Step::ioctl(
                step.name(),
                target,
                Outcome::Failed,
                Some(e.to_string()),
            ));
            Err(err)
        }
    }
}

/// Whether this kernel offers the cdev path for `addr` (bound to vfio-pci): `/dev/iommu` exists
/// and the device has a `vfio-dev/` directory (CONFIG_VFIO_DEVICE_CDEV).
pub fn available(host: &Host, addr: &PciAddress) -> bool {
    host.path("/dev/iommu").exists() && host.device_dir(addr).join("vfio-dev").is_dir()
}

/// The device's cdev: its name (`vfioN`), its node and the major:minor sysfs gives for it.
pub fn find_cdev(host: &Host, addr: &PciAddress) -> Result<(String, PathBuf, (u32, u32)), CdevError> {
    let dir = host.device_dir(addr).join("vfio-dev");
    let fail = |message: String| CdevError {
        step: CdevStep::FindCdev,
        target: addr.to_string(),
        errno: None,
        message,
        causes: Vec::new(),
    };
    let rd = std::fs::read_dir(&dir).map_err(|e| {
        fail(format!(
            "{}: {e}; the kernel has no VFIO device cdev (CONFIG_VFIO_DEVICE_CDEV, Linux 6.6+) or the device is not on vfio-pci",
            dir.display()
        ))
    })?;
    let names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .take(64)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vfio"))
        .collect();
    let [name] = names.as_slice() else {
        return Err(fail(format!(
            "{}: expected one vfioN entry, found {}",
            dir.display(),
            names.len()
        )));
    };
    let devfile = dir.join(name).join("dev");
    // Through the bounded reader: a FIFO in place of `dev` is refused, never waited on.
    let text = match crate::pci::sysfs::read_text(&devfile) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(fail(format!("{}: missing", devfile.display()))),
        Err(e) => return Err(fail(e.to_string())),
    };
    let parsed = text
        .trim()
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let Some(majmin) = parsed else {
        return Err(fail(format!(
            "{}: {:?} is not MAJOR:MINOR",
            devfile.display(),
            text.trim()
        )));
    };
    Ok((name.clone(), host.path("/dev/vfio/devices").join(name), majmin))
}

/// Open `/dev/iommu` and allocate an IOAS.
fn open_iommufd<V: IommufdOps>(
    ops: &V,
    host: &Host,
    steps: &mut Vec<Step>,
) -> Result<(V::Fd, u32), CdevError> {
    let path = host.path("/dev/iommu");
    let target = path.display().to_string();
    let fd = record(steps, CdevStep::OpenIommu, &target, ops.open(&path), |_| {
        String::new()
    })
    .map_err(|mut e| {
        if e.errno == Some(nix::libc::ENOENT) {
            e.causes
                .push("the kernel has no iommufd (CONFIG_IOMMUFD, Linux 6.2+); use --backend legacy".into());
        }
        e
    })?;
    let ioas = record(steps, CdevStep::IoasAlloc, &target, ops.ioas_alloc(&fd), |id| {
        format!("IOAS {id}")
    })?;
    Ok((fd, ioas))
}

/// Open, bind and attach one device's cdev to `iommufd`'s IOAS `ioas`. Every step is recorded
/// with the device's address as its target (the node is only known once sysfs names it, and
/// the dry-run plan must name the same targets); the node is in the details.
fn attach_device<V: IommufdOps>(
    ops: &V,
    host: &Host,
    addr: &PciAddress,
    iommufd: &V::Fd,
    ioas: u32,
    steps: &mut Vec<Step>,
) -> Result<CdevDevice<V::Fd>, CdevError> {
    let target = addr.to_string();
    let (name, node, majmin) = find_cdev(host, addr).inspect_err(|e| {
        steps.push(Step::ioctl(
            e.step.name(),
            &target,
            Outcome::Failed,
            Some(e.message.clone()),
        ));
    })?;
    steps.push(Step::ioctl(
        CdevStep::FindCdev.name(),
        &target,
        Outcome::Ok,
        Some(format!("{name} ({}:{})", majmin.0, majmin.1)),
    ));
    let ntarget = node.display().to_string();
    // devtmpfs creates the node right after vfio-pci binds; give udev-less systems a moment.
    let mut opened = ops.open(&node);
    for _ in 0..20 {
        match &opened {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                opened = ops.open(&node);
            }
            _ => break,
        }
    }
    // Fail closed: a node that is not the device sysfs names is not used.
    let checked = opened.and_then(|dev| match ops.rdev(&dev) {
        Ok(r) if r == majmin => Ok(dev),
        Ok(r) => Err(std::io::Error::other(format!(
            "{ntarget} is device {}:{}, but sysfs names {}:{} for {addr}; refusing to use it",
            r.0, r.1, majmin.0, majmin.1
        ))),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("{ntarget}: cannot stat: {e}"),
        )),
    });
    let dev = record(steps, CdevStep::OpenCdev, &target, checked, |_| ntarget.clone()).map_err(|mut e| {
        e.target = ntarget.clone();
        e
    })?;
    let devid = record(
        steps,
        CdevStep::BindIommufd,
        &target,
        ops.bind_iommufd(&dev, iommufd),
        |d| format!("devid {d}"),
    )
    .map_err(|mut e| {
        e.causes = explain(host, addr, e.errno);
        e
    })?;
    let hwpt_id = record(
        steps,
        CdevStep::AttachPt,
        &target,
        ops.attach_pt(&dev, ioas),
        |h| format!("IOAS {ioas} -> page table {h}"),
    )
    .map_err(|mut e| {
        e.causes = explain(host, addr, e.errno);
        e
    })?;
    Ok(CdevDevice {
        address: *addr,
        cdev: name,
        fd: dev,
        devid,
        hwpt_id,
    })
}

/// The iommufd arm of `attach::attach`: every device of a group (`devices`, all on vfio-pci)
/// bound to one iommufd and attached to one IOAS (the kernel lets the devices of one group
/// share an iommufd and refuses a second one).
pub(super) fn attach_group<V: IommufdOps>(
    ops: &V,
    host: &Host,
    devices: &[PciAddress],
    steps: &mut Vec<Step>,
) -> Result<Session<V::Fd>, CdevError> {
    let (iommufd, ioas_id) = open_iommufd(ops, host, steps)?;
    let mut session = Session {
        iommufd,
        ioas_id,
        devices: Vec::new(),
    };
    for addr in devices {
        let d = attach_device(ops, host, addr, &session.iommufd, ioas_id, steps)?;
        session.devices.push(d);
    }
    Ok(session)
}

/// The steps [`attach_group`] would record, for `--dry-run` (same names and targets).
pub fn planned_steps(host: &Host, devices: &[PciAddress]) -> Vec<Step> {
    let iommu = host.path("/dev/iommu").display().to_string();
    let mut v = vec![
        Step::ioctl(CdevStep::OpenIommu.name(), &iommu, Outcome::Planned, None),
        Step::ioctl(CdevStep::IoasAlloc.name(), &iommu, Outcome::Planned, None),
    ];
    for d in devices {
        for s in CdevStep::ATTACH {
            v.push(Step::ioctl(s.name(), &d.to_string(), Outcome::Planned, None));
        }
    }
    v
}

/// The steps [`inspect`] would record, for `--dry-run`.
pub fn planned_inspect(devices: &[PciAddress]) -> Vec<Step> {
    let mut v = Vec::new();
    for d in devices {
        for s in CdevStep::INSPECT {
            v.push(Step::ioctl(s.name(), &d.to_string(), Outcome::Planned, None));
        }
    }
    for d in devices {
        v.push(Step::ioctl(
            CdevStep::DetachPt.name(),
            &d.to_string(),
            Outcome::Planned,
            None,
        ));
    }
    v
}

/// The proof's part after the attach: each device's info and ROM region, then every device
/// detached again. Fills `out` (one entry per device of the session) as far as it got.
pub fn inspect<V: IommufdOps>(
    ops: &V,
    session: &Session<V::Fd>,
    steps: &mut Vec<Step>,
    out: &mut Vec<CdevProof>,
) -> Result<(), CdevError> {
    for d in &session.devices {
        out.push(CdevProof {
            address: d.address,
            cdev: Some(d.cdev.clone()),
            ioas_id: Some(session.ioas_id),
            devid: Some(d.devid),
            hwpt_id: Some(d.hwpt_id),
            info: None,
            rom_region_size: None,
            detached: false,
        });
    }
    for (d, p) in session.devices.iter().zip(out.iter_mut()) {
        let target = d.address.to_string();
        let info = record(steps, CdevStep::GetInfo, &target, ops.device_info(&d.fd), |i| {
            format!("{} regions, {} irqs", i.num_regions, i.num_irqs)
        })?;
        p.info = Some(info);
        let rom = record(
            steps,
            CdevStep::RomRegion,
            &target,
            ops.region_info(&d.fd, ioctl::PCI_ROM_REGION_INDEX),
            |r| format!("size {:#x}", r.size),
        )?;
        p.rom_region_size = Some(rom.size);
    }
    for (d, p) in session.devices.iter().zip(out.iter_mut()) {
        record(
            steps,
            CdevStep::DetachPt,
            &d.address.to_string(),
            ops.detach_pt(&d.fd),
            |_| String::new(),
        )?;
        p.detached = true;
    }
    Ok(())
}

/// Why the kernel refused a cdev bind or attach with `errno`, from what sysfs and /proc show:
/// a group sibling on a host driver, no interrupt remapping (and iommufd's
/// allow_unsafe_interrupts off), or another process owning the group (its legacy node or a
/// sibling's cdev open). Empty for other errors.
pub fn explain(host: &Host, addr: &PciAddress, errno: Option<i32>) -> Vec<String> {
    let mut causes = Vec::new();
    // Diagnostics after the kernel's refusal: what cannot be read is named as a cause, never
    // taken for "nothing there".
    let group = match host.iommu_group(addr) {
        Ok(g) => g,
        Err(e) => {
            causes.push(format!("the IOMMU group of {addr} cannot be read: {e}"));
            None
        }
    };
    match errno {
        Some(nix::libc::EPERM) => {
            if let Some(g) = group {
                let members = host.group_members(g).unwrap_or_else(|e| {
                    causes.push(format!("the members of IOMMU group {g} cannot be read: {e}"));
                    Vec::new()
                });
                for s in members.iter().filter(|s| *s != addr) {
                    let drv = host
                        .driver(s)
                        .unwrap_or_else(|e| Some(format!("an unreadable driver ({e})")));
                    if let Some(d) = drv.filter(|d| !HARMLESS.contains(&d.as_str())) {
                        causes.push(format!(
                            "group sibling {s} of IOMMU group {g} is on its host driver {d}, so the kernel \
                             will not give the group to user space; fix: `vfiotool bind {addr} --group` \
                             (or move {s} to vfio-pci/pci-stub)"
                        ));
                    }
                }
            }
            let ir = intremap::interrupt_remapping(host.root());
            let unsafe_ok = intremap::iommufd_allow_unsafe(host.root());
            if ir == Some(false) && unsafe_ok != Some(true) {
                causes.push(format!(
                    "interrupt remapping is off ({}) and iommufd.allow_unsafe_interrupts is {}; fix: enable \
                     interrupt remapping (VT-d/AMD-Vi with interrupt remapping in the firmware, no \
                     intremap=off on the kernel command line); `echo 1 > \
                     /sys/module/iommufd/parameters/allow_unsafe_interrupts` makes it work but lets the \
                     device inject arbitrary interrupts into the host: only for trusted guests",
                    intremap::evidence(host.root()),
                    match unsafe_ok {
                        Some(false) => "N",
                        _ => "unreadable",
                    }
                ));
            }
            if let Some(g) = group {
                let nodes = sibling_cdevs(host, g);
                for h in holders(host, &nodes) {
                    causes.push(format!(
                        "the group is owned through another iommufd: {h}; fix: stop that process (a running VM?)"
                    ));
                }
            }
            if causes.is_empty() {
                causes.push(
                    "none of the known causes shows in sysfs (a sibling on a host driver, interrupt \
                     remapping off, another process owning the group); see dmesg"
                        .into(),
                );
            }
        }
        Some(nix::libc::EBUSY) => {
            if let Some(g) = group {
                let mut nodes = vec![format!("/dev/vfio/{g}")];
                nodes.extend(sibling_cdevs(host, g));
                let found = holders(host, &nodes);
                for h in &found {
                    causes.push(format!(
                        "another process owns IOMMU group {g}: {h}; fix: stop it (a running VM?) or close the file"
                    ));
                }
                if found.is_empty() {
                    causes.push(format!(
                        "IOMMU group {g} is in use through the legacy interface (/dev/vfio/{g} open) or \
                         another iommufd, by a process /proc does not show here"
                    ));
                }
            }
        }
        // A second open of a cdev that another process has bound: its BIND is EINVAL.
        Some(nix::libc::EINVAL) => {
            if let Some(g) = group {
                for h in holders(host, &sibling_cdevs(host, g)) {
                    causes.push(format!(
                        "the device is already in use through its cdev: {h}; fix: stop that process (a running VM?)"
                    ));
                }
            }
        }
        _ => {}
    }
    causes
}

/// The cdev nodes of the devices of `group`, for the holder scan.
fn sibling_cdevs(host: &Host, group: u32) -> Vec<String> {
    let mut out = Vec::new();
    // Only feeds the holder scan (a diagnostic): an unreadable group scans its legacy node only.
    for s in host.group_members(group).unwrap_or_default() {
        if let Ok((name, _, _)) = find_cdev(host, &s) {
            out.push(format!("/dev/vfio/devices/{name}"));
        }
    }
    out
}

/// Processes that have one of `nodes` open ("sh (pid 42) has /dev/vfio/3 open").
pub fn holders(host: &Host, nodes: &[String]) -> Vec<String> {
    crate::host::holders::of_nodes(host.root(), nodes, 8)
        .iter()
        .map(|h| h.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::super::attach::{Backend, Group};
    use super::super::proof::{self, fake::FakeVfio, Proof};
    use super::*;

    /// The proof of `group` through the one attach sequence with the iommufd backend.
    fn prove_group(
        f: &FakeVfio,
        host: &Host,
        group: u32,
        devices: &[PciAddress],
        steps: &mut Vec<Step>,
    ) -> Proof {
        let g = Group { host, group, devices };
        proof::prove(f, Backend::Iommufd, &g, false, steps)
    }

    /// A sysfs/dev tree with devices of one IOMMU group; `cdev` gives a device a vfio-dev/ entry.
    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Self {
            let t = Tree(tempfile::tempdir().unwrap());
            fs::create_dir_all(t.0.path().join("dev/vfio/devices")).unwrap();
            fs::write(t.0.path().join("dev/iommu"), "").unwrap();
            t
        }
        fn host(&self) -> Host {
            Host::at(self.0.path())
        }
        fn device(&self, addr: &str, driver: Option<&str>, group: u32, cdev: Option<&str>) {
            let r = self.0.path();
            let d = r.join("sys/devices/pci0000:00").join(addr);
            fs::create_dir_all(&d).unwrap();
            if let Some(drv) = driver {
                let dd = r.join("sys/bus/pci/drivers").join(drv);
                fs::create_dir_all(&dd).unwrap();
                symlink(&dd, d.join("driver")).unwrap();
            }
            let g = r.join("sys/kernel/iommu_groups").join(group.to_string());
            fs::create_dir_all(g.join("devices")).unwrap();
            symlink(&g, d.join("iommu_group")).unwrap();
            symlink(&d, g.join("devices").join(addr)).unwrap();
            let all = r.join("sys/bus/pci/devices");
            fs::create_dir_all(&all).unwrap();
            symlink(&d, all.join(addr)).unwrap();
            if let Some(c) = cdev {
                let v = d.join("vfio-dev").join(c);
                fs::create_dir_all(&v).unwrap();
                let (ma, mi) = FakeVfio::CDEV_RDEV;
                fs::write(v.join("dev"), format!("{ma}:{mi}\n")).unwrap();
                fs::write(r.join("dev/vfio/devices").join(c), "").unwrap();
            }
        }
        fn ecap(&self, unit: &str, value: &str) {
            let p = self
                .0
                .path()
                .join("sys/class/iommu")
                .join(unit)
                .join("intel-iommu");
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("ecap"), value).unwrap();
        }
    }

    fn a(s: &str) -> PciAddress {
        PciAddress::parse(s).unwrap()
    }

    #[test]
    fn lone_device_is_bound_attached_read_and_detached_in_order() {
        let t = Tree::new();
        t.device("0000:00:03.0", Some("vfio-pci"), 4, Some("vfio0"));
        let f = FakeVfio {
            rom_region: 0x1000,
            ..Default::default()
        };
        let mut steps = Vec::new();
        let p = prove_group(&f, &t.host(), 4, &[a("00:03.0")], &mut steps);
        assert!(p.ok(), "{:?}", p.error);
        assert_eq!(p.backend, Backend::Iommufd);
        let c = &p.cdev[0];
        assert_eq!(c.cdev.as_deref(), Some("vfio0"));
        assert_eq!((c.ioas_id, c.devid, c.hwpt_id), (Some(1), Some(2), Some(3)));
        assert_eq!(c.rom_region_size, Some(0x1000));
        assert!(c.detached);
        let calls = f.calls.borrow().clone();
        let pos = |k: &str| calls.iter().position(|c| c.starts_with(k)).unwrap();
        assert!(pos("ioas_alloc") < pos("bind_iommufd") && pos("bind_iommufd") < pos("attach_pt 1"));
        assert!(pos("attach_pt") < pos("detach_pt"));
        let names: Vec<&str> = steps.iter().filter_map(|s| s.value.as_deref()).collect();
        assert_eq!(names.last(), Some(&"VFIO_DEVICE_DETACH_IOMMUFD_PT"));
        assert!(steps.iter().all(|s| s.result == Outcome::Ok), "{steps:?}");
        // The dry-run plan names the same steps, targets and order.
        let host = t.host();
        let devs = [a("00:03.0")];
        let plan = proof::planned_steps(
            Backend::Iommufd,
            &Group {
                host: &host,
                group: 4,
                devices: &devs,
            },
            false,
        );
        let key = |s: &Step| (s.action, s.target.clone(), s.value.clone());
        assert_eq!(
            steps.iter().map(key).collect::<Vec<_>>(),
            plan.iter().map(key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn no_vfio_dev_directory_fails_at_find_cdev() {
        let t = Tree::new();
        t.device("0000:00:03.0", Some("vfio-pci"), 4, None);
        let mut steps = Vec::new();
        let p = prove_group(&FakeVfio::default(), &t.host(), 4, &[a("00:03.0")], &mut steps);
        let e = p.cdev_error.unwrap();
        assert_eq!(e.step, CdevStep::FindCdev);
        assert!(e.message.contains("CONFIG_VFIO_DEVICE_CDEV"), "{}", e.message);
    }

    #[test]
    fn eperm_names_the_sibling_on_a_host_driver() {
        let t = Tree::new();
        t.device("0000:01:01.0", Some("vfio-pci"), 6, Some("vfio0"));
        t.device("0000:01:02.0", Some("nvme"), 6, None);
        t.device("0000:00:06.0", Some("pcieport"), 6, None);
        t.ecap("dmar0", "f00f4a\n");
        let f = FakeVfio {
            bind_iommufd_errno: Some(nix::libc::EPERM),
            ..Default::default()
        };
        let mut steps = Vec::new();
        let p = prove_group(&f, &t.host(), 6, &[a("01:01.0")], &mut steps);
        let e = p.cdev_error.unwrap();
        assert_eq!((e.step, e.errno), (CdevStep::BindIommufd, Some(nix::libc::EPERM)));
        assert_eq!(e.causes.len(), 1, "{:?}", e.causes);
        assert!(
            e.causes[0].contains("0000:01:02.0") && e.causes[0].contains("nvme"),
            "{:?}",
            e.causes
        );
        assert!(p.error.unwrap().contains("--group"));
    }

    #[test]
    fn eperm_without_interrupt_remapping_names_the_fix_and_the_risk() {
        let t = Tree::new();
        t.device("0000:00:03.0", Some("vfio-pci"), 4, Some("vfio0"));
        t.ecap("dmar0", "f42\n");
        let m = t.0.path().join("sys/module/iommufd/parameters");
        fs::create_dir_all(&m).unwrap();
        fs::write(m.join("allow_unsafe_interrupts"), "N\n").unwrap();
        let causes = explain(&t.host(), &a("00:03.0"), Some(nix::libc::EPERM));
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert!(causes[0].contains("interrupt remapping is off (dmar0 ecap f42 has IR bit 3 clear)"));
        assert!(causes[0].contains("allow_unsafe_interrupts is N") && causes[0].contains("trusted"));
        // With the parameter set, remapping being off is no longer a cause.
        fs::write(m.join("allow_unsafe_interrupts"), "Y\n").unwrap();
        let causes = explain(&t.host(), &a("00:03.0"), Some(nix::libc::EPERM));
        assert!(causes[0].contains("none of the known causes"), "{causes:?}");
    }

    #[test]
    fn ecap_ir_bit_decides_interrupt_remapping() {
        let t = Tree::new();
        assert_eq!(intremap::interrupt_remapping(t.host().root()), None);
        t.ecap("dmar0", "f00f4a\n");
        assert_eq!(intremap::interrupt_remapping(t.host().root()), Some(true));
        t.ecap("dmar1", "f42\n");
        assert_eq!(intremap::interrupt_remapping(t.host().root()), Some(false));
    }

    #[test]
    fn ebusy_without_a_visible_holder_still_says_what_holds_the_group() {
        let t = Tree::new();
        t.device("0000:00:03.0", Some("vfio-pci"), 4, Some("vfio0"));
        let causes = explain(&t.host(), &a("00:03.0"), Some(nix::libc::EBUSY));
        assert!(causes[0].contains("/dev/vfio/4"), "{causes:?}");
        // EINVAL with nobody holding the cdev: nothing to say.
        assert!(explain(&t.host(), &a("00:03.0"), Some(nix::libc::EINVAL)).is_empty());
    }
}
