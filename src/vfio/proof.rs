//! The proof that a bound group is usable by a VM: the same ioctl sequence QEMU makes, up to
//! `VFIO_SET_IOMMU` (and, only when asked, opening each device, which makes vfio-pci reset it).
//! Each ioctl is one [`Step`]; the first failure ends the proof with a message that says what it
//! means and what to do.

use std::path::Path;

use serde::Serialize;

use super::ioctl::{self, DeviceInfo, VfioOps};
use super::Step;
use crate::pci::address::PciAddress;

/// Which kernel interface a proof went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The group/container interface: `/dev/vfio/vfio` and `/dev/vfio/N`.
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

/// What the ioctls showed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Proof {
    pub group: u32,
    pub backend: Backend,
    pub api_version: Option<i32>,
    pub type1: bool,
    pub type1v2: bool,
    /// `VFIO_GROUP_FLAGS_VIABLE` as the kernel reported it.
    pub viable: bool,
    pub container_set: bool,
    pub iommu_set: Option<&'static str>,
    pub devices: Vec<DeviceProof>,
    /// The iommufd backend's per-device results (empty for the legacy backend).
    pub cdev: Vec<super::iommufd::CdevProof>,
    /// Why the proof stopped, when it did.
    pub error: Option<String>,
    /// The iommufd backend's failed step, with the causes found (None for the legacy backend).
    pub cdev_error: Option<super::iommufd::CdevError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceProof {
    pub address: PciAddress,
    pub info: Option<DeviceInfo>,
    /// Size of the ROM region (index 6); 0 when the device has no valid ROM.
    pub rom_region_size: Option<u64>,
    pub error: Option<String>,
}

impl Proof {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

fn step(steps: &mut Vec<Step>, name: &str, target: &str, r: Result<String, String>) -> Result<(), String> {
    match r {
        Ok(detail) => {
            let detail = (!detail.is_empty()).then_some(detail);
            steps.push(Step::ioctl(name, target, "ok", detail));
            Ok(())
        }
        Err(e) => {
            steps.push(Step::ioctl(name, target, "failed", Some(e.clone())));
            Err(e)
        }
    }
}

/// The ioctls the proof would make, for `--dry-run`.
pub fn planned_steps(group: u32, devices: &[PciAddress], open_device: bool) -> Vec<Step> {
    let g = format!("/dev/vfio/{group}");
    let mut v = vec![
        Step::ioctl("open", "/dev/vfio/vfio", "planned", None),
        Step::ioctl("VFIO_GET_API_VERSION", "/dev/vfio/vfio", "planned", None),
        Step::ioctl(
            "VFIO_CHECK_EXTENSION(TYPE1, TYPE1v2)",
            "/dev/vfio/vfio",
            "planned",
            None,
        ),
        Step::ioctl("open", &g, "planned", None),
        Step::ioctl("VFIO_GROUP_GET_STATUS", &g, "planned", None),
        Step::ioctl("VFIO_GROUP_SET_CONTAINER", &g, "planned", None),
        Step::ioctl("VFIO_SET_IOMMU", "/dev/vfio/vfio", "planned", None),
    ];
    if open_device {
        for d in devices {
            let t = d.to_string();
            v.push(Step::ioctl(
                "VFIO_GROUP_GET_DEVICE_FD (resets the device)",
                &t,
                "planned",
                None,
            ));
            v.push(Step::ioctl("VFIO_DEVICE_GET_INFO", &t, "planned", None));
            v.push(Step::ioctl(
                "VFIO_DEVICE_GET_REGION_INFO(ROM)",
                &t,
                "planned",
                None,
            ));
        }
    }
    v
}

/// Run the proof for `group` (the group node under `dev_vfio`), recording each ioctl in `steps`.
pub fn prove<V: VfioOps>(
    ops: &V,
    dev_vfio: &Path,
    group: u32,
    devices: &[PciAddress],
    open_device: bool,
    steps: &mut Vec<Step>,
) -> Proof {
    let mut proof = Proof {
        group,
        ..Default::default()
    };
    if let Err(e) = run(ops, dev_vfio, group, devices, open_device, steps, &mut proof) {
        proof.error = Some(e);
    }
    proof
}

fn io_msg(e: &std::io::Error) -> String {
    e.to_string()
}

fn run<V: VfioOps>(
    ops: &V,
    dev_vfio: &Path,
    group: u32,
    devices: &[PciAddress],
    open_device: bool,
    steps: &mut Vec<Step>,
    proof: &mut Proof,
) -> Result<(), String> {
    let cpath = dev_vfio.join("vfio");
    let ctarget = cpath.display().to_string();
    let container = ops.open(&cpath);
    let container = match container {
        Ok(c) => {
            steps.push(Step::ioctl("open", &ctarget, "ok", None));
            c
        }
        Err(e) => {
            let msg = format!("{ctarget}: {e}; is the vfio module loaded?");
            steps.push(Step::ioctl("open", &ctarget, "failed", Some(msg.clone())));
            return Err(msg);
        }
    };
    let version = ops.api_version(&container);
    step(
        steps,
        "VFIO_GET_API_VERSION",
        &ctarget,
        match &version {
            Ok(v) if *v == ioctl::API_VERSION => Ok(format!("{v}")),
            Ok(v) => Err(format!("VFIO API version {v}, expected {}", ioctl::API_VERSION)),
            Err(e) => Err(io_msg(e)),
        },
    )?;
    proof.api_version = version.as_ref().ok().copied();
    proof.type1 = ops
        .check_extension(&container, ioctl::TYPE1_IOMMU)
        .unwrap_or(false);
    proof.type1v2 = ops
        .check_extension(&container, ioctl::TYPE1V2_IOMMU)
        .unwrap_or(false);
    step(
        steps,
        "VFIO_CHECK_EXTENSION(TYPE1, TYPE1v2)",
        &ctarget,
        if proof.type1 || proof.type1v2 {
            Ok(format!("TYPE1={} TYPE1v2={}", proof.type1, proof.type1v2))
        } else {
            Err("the kernel offers no type1 IOMMU backend; load vfio_iommu_type1".into())
        },
    )?;

    let gpath = dev_vfio.join(group.to_string());
    let gtarget = gpath.display().to_string();
    // devtmpfs creates the node when vfio-pci binds; give udev-less systems a moment.
    let mut opened = ops.open(&gpath);
    for _ in 0..20 {
        match &opened {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                opened = ops.open(&gpath);
            }
            _ => break,
        }
    }
    let group_fd = match opened {
        Ok(g) => {
            steps.push(Step::ioctl("open", &gtarget, "ok", None));
            g
        }
        Err(e) => {
            let hint = match e.raw_os_error() {
                Some(nix::libc::EBUSY) => "; another process (a running VM?) holds the group",
                Some(nix::libc::ENOENT) => "; no device of the group is bound to vfio-pci",
                _ => "",
            };
            let msg = format!("{gtarget}: {e}{hint}");
            steps.push(Step::ioctl("open", &gtarget, "failed", Some(msg.clone())));
            return Err(msg);
        }
    };
    let flags = ops.group_status(&group_fd);
    proof.viable = matches!(flags, Ok(f) if f & ioctl::GROUP_FLAGS_VIABLE != 0);
    step(
        steps,
        "VFIO_GROUP_GET_STATUS",
        &gtarget,
        match flags {
            Ok(f) if f & ioctl::GROUP_FLAGS_VIABLE != 0 => Ok(format!("flags {f:#x}: viable")),
            Ok(f) => Err(format!(
                "IOMMU group {group} is not viable (flags {f:#x}): a device of the group is still \
                 on a host driver; bind the whole group (--group) or move that device"
            )),
            Err(e) => Err(io_msg(&e)),
        },
    )?;
    step(
        steps,
        "VFIO_GROUP_SET_CONTAINER",
        &gtarget,
        ops.set_container(&group_fd, &container)
            .map(|_| String::new())
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::EPERM) => format!("{e}: the group is not viable"),
                _ => io_msg(&e),
            }),
    )?;
    proof.container_set = true;
    let (kind, name) = if proof.type1v2 {
        (ioctl::TYPE1V2_IOMMU, "TYPE1v2")
    } else {
        (ioctl::TYPE1_IOMMU, "TYPE1")
    };
    step(
        steps,
        "VFIO_SET_IOMMU",
        &ctarget,
        ops.set_iommu(&container, kind)
            .map(|_| name.to_string())
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::EPERM) => format!(
                    "{e}: no interrupt remapping (dmesg: \"No interrupt remapping support\"). Fix: enable \
                     interrupt remapping (VT-d/AMD-Vi in firmware, no intremap=off on the kernel command \
                     line). vfio_iommu_type1.allow_unsafe_interrupts=1 makes it work but lets a device \
                     inject arbitrary interrupts (MSI) into the host: only for trusted guests"
                ),
                _ => io_msg(&e),
            }),
    )?;
    proof.iommu_set = Some(name);

    if open_device {
        for addr in devices {
            let name = addr.to_string();
            let mut dp = DeviceProof {
                address: *addr,
                info: None,
                rom_region_size: None,
                error: None,
            };
            match ops.device_fd(&group_fd, &name) {
                Ok(dev) => {
                    steps.push(Step::ioctl(
                        "VFIO_GROUP_GET_DEVICE_FD",
                        &name,
                        "ok",
                        Some("device reset".into()),
                    ));
                    match ops.device_info(&dev) {
                        Ok(i) => {
                            steps.push(Step::ioctl(
                                "VFIO_DEVICE_GET_INFO",
                                &name,
                                "ok",
                                Some(format!("{} regions, {} irqs", i.num_regions, i.num_irqs)),
                            ));
                            dp.info = Some(i);
                        }
                        Err(e) => dp.error = Some(format!("VFIO_DEVICE_GET_INFO: {e}")),
                    }
                    match ops.region_info(&dev, ioctl::PCI_ROM_REGION_INDEX) {
                        Ok(r) => {
                            steps.push(Step::ioctl(
                                "VFIO_DEVICE_GET_REGION_INFO(ROM)",
                                &name,
                                "ok",
                                Some(format!("size {:#x}", r.size)),
                            ));
                            dp.rom_region_size = Some(r.size);
                        }
                        Err(e) => dp.error = Some(format!("VFIO_DEVICE_GET_REGION_INFO(ROM): {e}")),
                    }
                }
                Err(e) => {
                    let msg = format!("{name}: VFIO_GROUP_GET_DEVICE_FD: {e}");
                    steps.push(Step::ioctl(
                        "VFIO_GROUP_GET_DEVICE_FD",
                        &name,
                        "failed",
                        Some(msg.clone()),
                    ));
                    dp.error = Some(msg);
                }
            }
            let failed = dp.error.clone();
            proof.devices.push(dp);
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod fake {
    use std::cell::RefCell;
    use std::io;
    use std::path::Path;

    use super::super::ioctl::{DeviceInfo, RegionInfo, VfioOps};

    /// A scripted VFIO: which calls fail and what the group status is.
    #[derive(Default)]
    pub struct FakeVfio {
        pub missing_container: bool,
        pub group_flags: u32,
        pub set_iommu_errno: Option<i32>,
        pub rom: Vec<u8>,
        pub rom_region: u64,
        pub calls: RefCell<Vec<String>>,
        /// errno of VFIO_DEVICE_BIND_IOMMUFD (None: it works).
        pub bind_iommufd_errno: Option<i32>,
    }

    impl VfioOps for FakeVfio {
        type Fd = String;
        fn open(&self, path: &Path) -> io::Result<String> {
            self.calls.borrow_mut().push(format!("open {}", path.display()));
            if self.missing_container && path.ends_with("vfio") {
                return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
            }
            Ok(path.display().to_string())
        }
        fn api_version(&self, _: &String) -> io::Result<i32> {
            Ok(0)
        }
        fn check_extension(&self, _: &String, ext: u32) -> io::Result<bool> {
            Ok(ext == 1 || ext == 3)
        }
        fn group_status(&self, _: &String) -> io::Result<u32> {
            Ok(self.group_flags)
        }
        fn set_container(&self, _: &String, _: &String) -> io::Result<()> {
            if self.group_flags & 1 == 0 {
                return Err(io::Error::from_raw_os_error(nix::libc::EPERM));
            }
            Ok(())
        }
        fn set_iommu(&self, _: &String, t: u32) -> io::Result<()> {
            self.calls.borrow_mut().push(format!("set_iommu {t}"));
            match self.set_iommu_errno {
                Some(e) => Err(io::Error::from_raw_os_error(e)),
                None => Ok(()),
            }
        }
        fn device_fd(&self, _: &String, name: &str) -> io::Result<String> {
            self.calls.borrow_mut().push(format!("device_fd {name}"));
            Ok(name.to_string())
        }
        fn device_info(&self, _: &String) -> io::Result<DeviceInfo> {
            Ok(DeviceInfo {
                flags: 2,
                num_regions: 9,
                num_irqs: 5,
            })
        }
        fn region_info(&self, _: &String, index: u32) -> io::Result<RegionInfo> {
            Ok(RegionInfo {
                index,
                flags: 1,
                size: self.rom_region,
                offset: 6 << 40,
            })
        }
        fn read_at(&self, _: &String, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let start = (offset - (6 << 40)) as usize;
            let end = (start + buf.len()).min(self.rom.len());
            if start >= end {
                return Ok(0);
            }
            buf[..end - start].copy_from_slice(&self.rom[start..end]);
            Ok(end - start)
        }
    }
}

#[cfg(test)]
impl fake::FakeVfio {
    /// The major:minor the fake cdev nodes have (tests write the same into sysfs `dev`).
    pub const CDEV_RDEV: (u32, u32) = (511, 0);
}

#[cfg(test)]
impl super::ioctl::IommufdOps for fake::FakeVfio {
    fn ioas_alloc(&self, _: &String) -> std::io::Result<u32> {
        self.calls.borrow_mut().push("ioas_alloc".into());
        Ok(1)
    }
    fn bind_iommufd(&self, dev: &String, _: &String) -> std::io::Result<u32> {
        self.calls.borrow_mut().push(format!("bind_iommufd {dev}"));
        match self.bind_iommufd_errno {
            Some(e) => Err(std::io::Error::from_raw_os_error(e)),
            None => Ok(2),
        }
    }
    fn attach_pt(&self, _: &String, pt: u32) -> std::io::Result<u32> {
        self.calls.borrow_mut().push(format!("attach_pt {pt}"));
        Ok(3)
    }
    fn detach_pt(&self, _: &String) -> std::io::Result<()> {
        self.calls.borrow_mut().push("detach_pt".into());
        Ok(())
    }
    fn rdev(&self, _: &String) -> std::io::Result<(u32, u32)> {
        Ok(Self::CDEV_RDEV)
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeVfio;
    use super::*;

    fn dev() -> Vec<PciAddress> {
        vec![PciAddress::new(0, 1, 0, 0)]
    }

    #[test]
    fn viable_group_is_proven_with_type1v2_and_no_device_open() {
        let f = FakeVfio {
            group_flags: 1,
            ..Default::default()
        };
        let mut steps = Vec::new();
        let p = prove(&f, Path::new("/dev/vfio"), 5, &dev(), false, &mut steps);
        assert!(p.ok(), "{:?}", p.error);
        assert!(p.viable && p.container_set);
        assert_eq!(p.iommu_set, Some("TYPE1v2"));
        assert!(f.calls.borrow().iter().all(|c| !c.starts_with("device_fd")));
        assert!(steps.iter().all(|s| s.result == "ok"));
    }

    #[test]
    fn not_viable_stops_at_get_status() {
        let f = FakeVfio::default();
        let mut steps = Vec::new();
        let p = prove(&f, Path::new("/dev/vfio"), 5, &dev(), false, &mut steps);
        assert!(!p.viable);
        assert!(p.error.as_deref().unwrap_or("").contains("not viable"));
        assert!(!p.container_set);
    }

    #[test]
    fn eperm_on_set_iommu_names_interrupt_remapping_and_the_risk() {
        let f = FakeVfio {
            group_flags: 1,
            set_iommu_errno: Some(nix::libc::EPERM),
            ..Default::default()
        };
        let mut steps = Vec::new();
        let p = prove(&f, Path::new("/dev/vfio"), 5, &dev(), false, &mut steps);
        let e = p.error.unwrap_or_default();
        assert!(e.contains("interrupt remapping"), "{e}");
        assert!(e.contains("allow_unsafe_interrupts"), "{e}");
    }

    #[test]
    fn open_device_reads_info_and_rom_region() {
        let f = FakeVfio {
            group_flags: 1,
            rom_region: 0x40000,
            ..Default::default()
        };
        let mut steps = Vec::new();
        let p = prove(&f, Path::new("/dev/vfio"), 5, &dev(), true, &mut steps);
        assert!(p.ok());
        assert_eq!(p.devices[0].rom_region_size, Some(0x40000));
        assert_eq!(p.devices[0].info.map(|i| i.num_regions), Some(9));
    }
}
