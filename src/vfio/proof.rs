//! The proof that a bound group is usable by a VM: the same ioctl sequence QEMU makes, through
//! the one attach sequence (`attach.rs`) with the backend the caller chose. Legacy: up to
//! `VFIO_SET_IOMMU` (and, only when asked, opening each device, which makes vfio-pci reset it).
//! iommufd: every device's cdev bound (which opens and resets it) and attached, its info and ROM
//! region read, then detached.
//! Each ioctl is one [`Step`]; the first failure ends the proof with a message that says what it
//! means and what to do.

use crate::vfio::Outcome;

use serde::Serialize;

use super::attach::{self, AttachError, AttachFacts, Attached, Backend, Group};
use super::ioctl::{self, DeviceInfo, IommufdOps};
use super::iommufd;
use super::Step;
use crate::pci::address::PciAddress;

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

/// Why a proof stopped: one variant per failing step (the report keeps its text).
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The attach sequence (legacy container/group, or the cdev through iommufd).
    #[error("{0}")]
    Attach(AttachError),
    /// The cdev backend's per-device inspection.
    #[error("{0}")]
    Cdev(super::iommufd::CdevError),
    #[error("{name}: VFIO_GROUP_GET_DEVICE_FD: {source}")]
    DeviceFd { name: String, source: std::io::Error },
    #[error("VFIO_DEVICE_GET_INFO: {0}")]
    DeviceInfo(std::io::Error),
    #[error("VFIO_DEVICE_GET_REGION_INFO(ROM): {0}")]
    RomRegion(std::io::Error),
}

impl Proof {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The ioctls the proof would make, for `--dry-run`: the attach sequence's own plan (same step
/// names and nodes as the real run), then what the proof does with the attached devices.
pub fn planned_steps(backend: Backend, target: &Group, open_device: bool) -> Vec<Step> {
    let mut v = attach::planned_steps(backend, target);
    if backend == Backend::Iommufd {
        v.extend(iommufd::planned_inspect(target.devices));
    } else if open_device {
        for d in target.devices {
            let t = d.to_string();
            v.push(Step::ioctl(
                "VFIO_GROUP_GET_DEVICE_FD",
                &t,
                Outcome::Planned,
                Some("resets the device".into()),
            ));
            v.push(Step::ioctl("VFIO_DEVICE_GET_INFO", &t, Outcome::Planned, None));
            v.push(Step::ioctl(
                "VFIO_DEVICE_GET_REGION_INFO(ROM)",
                &t,
                Outcome::Planned,
                None,
            ));
        }
    }
    v
}

/// Run the proof for `target` through `backend`, recording each ioctl in `steps`.
pub fn prove<V: IommufdOps>(
    ops: &V,
    backend: Backend,
    target: &Group,
    open_device: bool,
    steps: &mut Vec<Step>,
) -> Proof {
    let mut proof = Proof {
        group: target.group,
        backend,
        ..Default::default()
    };
    if let Err(e) = run(ops, backend, target, open_device, steps, &mut proof) {
        proof.error = Some(e.to_string());
    }
    proof
}

fn run<V: IommufdOps>(
    ops: &V,
    backend: Backend,
    target: &Group,
    open_device: bool,
    steps: &mut Vec<Step>,
    proof: &mut Proof,
) -> Result<(), ProofError> {
    let mut facts = AttachFacts::default();
    let attached = attach::attach(ops, backend, target, &mut facts, steps);
    proof.api_version = facts.api_version;
    proof.type1 = facts.type1;
    proof.type1v2 = facts.type1v2;
    proof.viable = facts.viable;
    proof.container_set = facts.container_set;
    proof.iommu_set = facts.iommu_set;
    // Keep the container (or iommufd) open as long as the group is used (the fake counts opens
    // and closes).
    let attached: Attached<V::Fd> = attached.map_err(|e| {
        if let AttachError::Cdev(c) = &e {
            proof.cdev_error = Some(c.clone());
        }
        ProofError::Attach(e)
    })?;
    let group_fd = match &attached {
        Attached::Legacy { group, .. } => group,
        Attached::Iommufd(session) => {
            return iommufd::inspect(ops, session, steps, &mut proof.cdev).map_err(|e| {
                proof.cdev_error = Some(e.clone());
                ProofError::Cdev(e)
            });
        }
    };
    let devices = target.devices;

    if open_device {
        for addr in devices {
            let name = addr.to_string();
            let mut dp = DeviceProof {
                address: *addr,
                info: None,
                rom_region_size: None,
                error: None,
            };
            // The last failure of this device stops the proof (its text is the device's error).
            let mut failed = None;
            match ops.device_fd(group_fd, &name) {
                Ok(dev) => {
                    steps.push(Step::ioctl(
                        "VFIO_GROUP_GET_DEVICE_FD",
                        &name,
                        Outcome::Ok,
                        Some("device reset".into()),
                    ));
                    match ops.device_info(&dev) {
                        Ok(i) => {
                            steps.push(Step::ioctl(
                                "VFIO_DEVICE_GET_INFO",
                                &name,
                                Outcome::Ok,
                                Some(format!("{} regions, {} irqs", i.num_regions, i.num_irqs)),
                            ));
                            dp.info = Some(i);
                        }
                        Err(e) => failed = Some(ProofError::DeviceInfo(e)),
                    }
                    match ops.region_info(&dev, ioctl::PCI_ROM_REGION_INDEX) {
                        Ok(r) => {
                            steps.push(Step::ioctl(
                                "VFIO_DEVICE_GET_REGION_INFO(ROM)",
                                &name,
                                Outcome::Ok,
                                Some(format!("size {:#x}", r.size)),
                            ));
                            dp.rom_region_size = Some(r.size);
                        }
                        Err(e) => failed = Some(ProofError::RomRegion(e)),
                    }
                }
                Err(source) => {
                    let e = ProofError::DeviceFd {
                        name: name.clone(),
                        source,
                    };
                    steps.push(Step::ioctl(
                        "VFIO_GROUP_GET_DEVICE_FD",
                        &name,
                        Outcome::Failed,
                        Some(e.to_string()),
                    ));
                    failed = Some(e);
                }
            }
            dp.error = failed.as_ref().map(ProofError::to_string);
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
        /// `VFIO_GET_API_VERSION` answers this (0 is the only valid version).
        pub api_version: i32,
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
            Ok(self.api_version)
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

    /// The legacy proof of group 5 (one device) with nodes under /dev/vfio.
    fn prove_legacy(f: &FakeVfio, open_device: bool, steps: &mut Vec<Step>) -> Proof {
        let host = super::super::host::Host::at("/");
        let devices = dev();
        let g = Group {
            host: &host,
            group: 5,
            devices: &devices,
        };
        prove(f, Backend::Legacy, &g, open_device, steps)
    }

    #[test]
    fn viable_group_is_proven_with_type1v2_and_no_device_open() {
        let f = FakeVfio {
            group_flags: 1,
            ..Default::default()
        };
        let mut steps = Vec::new();
        let p = prove_legacy(&f, false, &mut steps);
        assert!(p.ok(), "{:?}", p.error);
        assert!(p.viable && p.container_set);
        assert_eq!(p.iommu_set, Some("TYPE1v2"));
        assert!(f.calls.borrow().iter().all(|c| !c.starts_with("device_fd")));
        assert!(steps.iter().all(|s| s.result == Outcome::Ok));
    }

    #[test]
    fn not_viable_stops_at_get_status() {
        let f = FakeVfio::default();
        let mut steps = Vec::new();
        let p = prove_legacy(&f, false, &mut steps);
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
        let p = prove_legacy(&f, false, &mut steps);
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
        let p = prove_legacy(&f, true, &mut steps);
        assert!(p.ok());
        assert_eq!(p.devices[0].rom_region_size, Some(0x40000));
        assert_eq!(p.devices[0].info.map(|i| i.num_regions), Some(9));
    }
}
