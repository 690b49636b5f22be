use super::facts::*;
use super::modules::parse_id;
use super::*;
use crate::host::intremap::ir_chips;
use crate::pci::device::Device;

#[test]
fn versions_and_ids() {
    assert_eq!(parse_version("6.1.0-27-amd64"), Some((6, 1)));
    assert_eq!(parse_version("6.18.44-fc"), Some((6, 18)));
    assert_eq!(parse_id("10de:1b80"), Some((Some(0x10de), Some(0x1b80))));
    assert_eq!(parse_id("ffffffff:1b80"), Some((None, Some(0x1b80))));
    assert_eq!(parse_id("10de"), None);
}

use crate::pci::address::PciAddress;
use crate::vfio::ioctl::{DeviceInfo, RegionInfo, GROUP_FLAGS_VIABLE, TYPE1V2_IOMMU};
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

/// check's probe is legacy only: a cdev call here is a bug, answered with ENOTTY.
impl crate::vfio::ioctl::IommufdOps for Fake {
    fn ioas_alloc(&self, _: &Self::Fd) -> std::io::Result<u32> {
        Err(std::io::Error::from_raw_os_error(nix::libc::ENOTTY))
    }
    fn bind_iommufd(&self, _: &Self::Fd, _: &Self::Fd) -> std::io::Result<u32> {
        Err(std::io::Error::from_raw_os_error(nix::libc::ENOTTY))
    }
    fn attach_pt(&self, _: &Self::Fd, _: u32) -> std::io::Result<u32> {
        Err(std::io::Error::from_raw_os_error(nix::libc::ENOTTY))
    }
    fn detach_pt(&self, _: &Self::Fd) -> std::io::Result<()> {
        Err(std::io::Error::from_raw_os_error(nix::libc::ENOTTY))
    }
    fn rdev(&self, _: &Self::Fd) -> std::io::Result<(u32, u32)> {
        Err(std::io::Error::from_raw_os_error(nix::libc::ENOTTY))
    }
}

impl crate::vfio::ioctl::VfioOps for Fake {
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
        probe_set_iommu(&f, &crate::vfio::host::Host::at("/"), &groups),
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
    match probe_set_iommu(&f, &crate::vfio::host::Host::at("/"), &groups) {
        IrProbe::Refused { group: 4, error } => assert!(error.starts_with("VFIO_SET_IOMMU: "), "{error}"),
        other => panic!("{other:?}"),
    }
    let f = fake(&["/dev/vfio/4"], true, None);
    assert_eq!(
        probe_set_iommu(&f, &crate::vfio::host::Host::at("/"), &groups),
        IrProbe::NotTested("group 4 is in use (a VM holds it)".into())
    );
    let f = fake(&[], false, None);
    assert_eq!(
        probe_set_iommu(&f, &crate::vfio::host::Host::at("/"), &groups),
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
        probe_set_iommu(&f, &crate::vfio::host::Host::at("/"), &groups),
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
