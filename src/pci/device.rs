//! A snapshot of one PCI function as sysfs shows it at one moment.
//!
//! [`Device::read`] reads the standard config header (`config`, the first 64 bytes, readable
//! without root) for the IDs, class, revision, header type and subsystem, and falls back to the
//! `vendor` / `device` / `class` / `revision` / `subsystem_*` attributes when `config` is absent
//! (a hand-made tree). Then the links and attributes the kernel keeps: `driver`,
//! `driver_override`, `iommu_group`, `reset_method`, `boot_vga`, `rom`.
//!
//! A snapshot never changes after it is read: re-read the device after any sysfs write (a
//! `drivers_probe` write succeeds even when the probe fails).

use std::path::Path;

use serde::Serialize;

use crate::error::PathError;
use crate::pci::address::PciAddress;
use crate::pci::sysfs::{self, SysfsRoot};

/// Bytes of `config` read: the standard header, what an unprivileged read returns.
const CONFIG_HEADER: u64 = 64;

/// One PCI function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub address: PciAddress,
    pub vendor_id: u16,
    pub device_id: u16,
    /// 24-bit class code: base class << 16 | subclass << 8 | programming interface.
    pub class_code: u32,
    pub revision: Option<u8>,
    /// Header type without the multifunction bit: 0 endpoint, 1 PCI-PCI bridge, 2 CardBus.
    /// `None` when neither `config` nor the class tells.
    pub header_type: Option<u8>,
    pub subsystem_vendor_id: Option<u16>,
    pub subsystem_device_id: Option<u16>,
    /// The bound driver (`driver` link), `None` when unbound.
    pub driver: Option<String>,
    /// `driver_override`, `None` when it reads `(null)` or is absent.
    pub driver_override: Option<String>,
    /// IOMMU group number (`iommu_group` link), `None` without an IOMMU.
    pub iommu_group: Option<u32>,
    /// `reset_method` in the kernel's order; empty when the file is absent (before 5.15, or no
    /// reset method).
    pub reset_methods: Vec<String>,
    /// `boot_vga` (VGA-class devices only): true for the firmware's boot GPU.
    pub boot_vga: Option<bool>,
    /// A `rom` attribute exists (the device has an expansion ROM BAR or a shadowed ROM).
    pub rom: bool,
    /// PCI-PCI or CardBus bridge: never a passthrough target, harmless in a group.
    pub bridge: bool,
}

fn bad_data(path: &Path, what: &str) -> PathError {
    PathError {
        path: path.to_path_buf(),
        action: "parsing",
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()),
    }
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// A sysfs hex attribute as a number, `None` when absent or not hex.
fn hex_attr(root: &SysfsRoot, addr: &PciAddress, name: &str) -> Result<Option<u32>, PathError> {
    Ok(root
        .read_device_attr(addr, name)?
        .as_deref()
        .and_then(sysfs::parse_hex))
}

/// Subsystem IDs of 0 or 0xffff mean "none" (as lspci treats them).
fn subsystem_id(v: Option<u32>) -> Option<u16> {
    v.and_then(|v| u16::try_from(v).ok())
        .filter(|v| *v != 0 && *v != 0xffff)
}

/// A device `list` and `groups` could not read, and why (the error names the path).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unreadable {
    pub address: PciAddress,
    pub error: String,
}

/// The header type a bridge's class implies when config space cannot be read: PCI-to-PCI
/// (06 04) and semi-transparent (06 09) bridges have type 1, CardBus bridges (06 07) type 2.
pub fn header_type_of_class(class_code: u32) -> Option<u8> {
    match class_code >> 8 {
        0x0604 | 0x0609 => Some(1),
        0x0607 => Some(2),
        _ => None,
    }
}

/// The one bridge rule: header type 1 (PCI-to-PCI) or 2 (CardBus). Bridges are never bound.
pub fn is_bridge_header(header_type: Option<u8>) -> bool {
    matches!(header_type, Some(1) | Some(2))
}

impl Device {
    /// Read the device at `addr` under `root`. Fails (naming the path) when the device
    /// directory has neither a readable `config` nor `vendor`/`device`/`class` attributes.
    pub fn read(root: &SysfsRoot, addr: &PciAddress) -> Result<Device, PathError> {
        let config_path = root.device_attr(addr, "config");
        let config = sysfs::read_bytes(&config_path, CONFIG_HEADER)?.filter(|c| c.len() >= 0x30);
        let mut dev = match config {
            Some(c) => Self::from_config(*addr, &c),
            None => Self::from_attrs(root, addr)?,
        };
        if dev.header_type.is_none() {
            dev.header_type = header_type_of_class(dev.class_code);
        }
        dev.bridge = is_bridge_header(dev.header_type);
        if dev.header_type != Some(0) && dev.subsystem_vendor_id.is_none() {
            dev.subsystem_vendor_id = subsystem_id(hex_attr(root, addr, "subsystem_vendor")?);
            dev.subsystem_device_id = subsystem_id(hex_attr(root, addr, "subsystem_device")?);
        }
        dev.driver = root.read_device_link(addr, "driver")?;
        dev.driver_override = root
            .read_device_attr(addr, "driver_override")?
            .filter(|s| !s.is_empty() && s != "(null)");
        dev.iommu_group = match root.read_device_link(addr, "iommu_group")? {
            Some(name) => Some(
                name.parse()
                    .map_err(|_| bad_data(&root.device_attr(addr, "iommu_group"), "not a group number"))?,
            ),
            None => None,
        };
        dev.reset_methods = root
            .read_device_attr(addr, "reset_method")?
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        if dev.base_class() == 0x03 {
            dev.boot_vga = root.read_device_attr(addr, "boot_vga")?.map(|s| s == "1");
        }
        dev.rom = root.device_attr(addr, "rom").symlink_metadata().is_ok();
        Ok(dev)
    }

    /// Every PCI device under `root` that can be read, sorted by address, and one note per
    /// device that cannot (a captured tree is untrusted: one bad device must not hide the
    /// others). Fails only when the device list itself cannot be read.
    pub fn read_each(root: &SysfsRoot) -> Result<(Vec<Device>, Vec<Unreadable>), PathError> {
        let mut devices = Vec::new();
        let mut unreadable = Vec::new();
        for a in root.list_devices()? {
            match Device::read(root, &a) {
                Ok(d) => devices.push(d),
                Err(e) => unreadable.push(Unreadable {
                    address: a,
                    error: e.to_string(),
                }),
            }
        }
        Ok((devices, unreadable))
    }

    /// Every PCI device under `root`, sorted by address.
    pub fn read_all(root: &SysfsRoot) -> Result<Vec<Device>, PathError> {
        root.list_devices()?
            .iter()
            .map(|a| Device::read(root, a))
            .collect()
    }

    /// A device with only its address known: IDs 0xffff, no class, nothing bound.
    pub(crate) fn blank(address: PciAddress) -> Device {
        Device {
            address,
            vendor_id: 0xffff,
            device_id: 0xffff,
            class_code: 0,
            revision: None,
            header_type: None,
            subsystem_vendor_id: None,
            subsystem_device_id: None,
            driver: None,
            driver_override: None,
            iommu_group: None,
            reset_methods: Vec::new(),
            boot_vga: None,
            rom: false,
            bridge: false,
        }
    }

    /// IDs, class, revision, header type and (type 0) subsystem from the config header.
    fn from_config(address: PciAddress, c: &[u8]) -> Device {
        let mut d = Self::blank(address);
        d.vendor_id = le16(c, 0).unwrap_or(0xffff);
        d.device_id = le16(c, 2).unwrap_or(0xffff);
        d.revision = c.get(8).copied();
        d.class_code = c.get(9..12).map_or(0, |b| {
            u32::from(b[2]) << 16 | u32::from(b[1]) << 8 | u32::from(b[0])
        });
        let header = c.get(0x0e).map(|h| h & 0x7f);
        d.header_type = header;
        if header == Some(0) {
            d.subsystem_vendor_id = subsystem_id(le16(c, 0x2c).map(u32::from));
            d.subsystem_device_id = subsystem_id(le16(c, 0x2e).map(u32::from));
        }
        d
    }

    /// IDs and class from the `vendor`, `device`, `class`, `revision` attributes.
    fn from_attrs(root: &SysfsRoot, addr: &PciAddress) -> Result<Device, PathError> {
        let mut d = Self::blank(*addr);
        let need = |name: &str| -> Result<u32, PathError> {
            hex_attr(root, addr, name)?.ok_or_else(|| {
                bad_data(
                    &root.device_attr(addr, name),
                    "missing or not hex (and no readable config); is this a PCI device directory?",
                )
            })
        };
        d.vendor_id = need("vendor")? as u16;
        d.device_id = need("device")? as u16;
        d.class_code = need("class")? & 0xff_ffff;
        d.revision = hex_attr(root, addr, "revision")?.map(|r| r as u8);
        d.subsystem_vendor_id = subsystem_id(hex_attr(root, addr, "subsystem_vendor")?);
        d.subsystem_device_id = subsystem_id(hex_attr(root, addr, "subsystem_device")?);
        Ok(d)
    }

    pub fn base_class(&self) -> u8 {
        (self.class_code >> 16) as u8
    }

    pub fn subclass(&self) -> u8 {
        (self.class_code >> 8) as u8
    }

    pub fn prog_if(&self) -> u8 {
        self.class_code as u8
    }

    /// Base class and subclass, as lspci's `[0300]`.
    pub fn class16(&self) -> u16 {
        (self.class_code >> 8) as u16
    }

    /// Display controller (class 03: VGA, 3D, other display).
    pub fn is_display(&self) -> bool {
        self.base_class() == 0x03
    }

    /// The kernel's `modalias` for this function, computed from the IDs:
    /// `pci:v000010DEd00001B80sv00001458sd00003702bc03sc00i00`.
    pub fn modalias(&self) -> String {
        format!(
            "pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}",
            self.vendor_id,
            self.device_id,
            self.subsystem_vendor_id.unwrap_or(0),
            self.subsystem_device_id.unwrap_or(0),
            self.base_class(),
            self.subclass(),
            self.prog_if()
        )
    }

    /// Why the host probably needs this device itself (so a group that holds it is risky to
    /// pass through), or `None`.
    pub fn host_role(&self) -> Option<&'static str> {
        if self.boot_vga == Some(true) {
            return Some("boot GPU");
        }
        match self.class16() {
            0x0600 => Some("host bridge"),
            0x0601 => Some("ISA bridge (chipset)"),
            0x0c05 => Some("SMBus (chipset)"),
            0x0c03 => Some("USB controller"),
            c if c >> 8 == 0x01 => Some("storage controller"),
            c if c >> 8 == 0x02 => Some("network controller"),
            _ => None,
        }
    }
}

/// The device classes `list --class` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassFilter {
    /// Display controllers (class 03).
    Gpu,
    /// Audio devices (04 01 and 04 03: HD Audio functions of GPUs).
    Audio,
    /// USB controllers (0c 03).
    Usb,
    /// Network controllers (02).
    Net,
    /// Mass storage controllers (01: NVMe, SATA, RAID).
    Storage,
}

impl ClassFilter {
    pub fn matches(&self, d: &Device) -> bool {
        match self {
            ClassFilter::Gpu => d.base_class() == 0x03,
            ClassFilter::Audio => matches!(d.class16(), 0x0401 | 0x0403),
            ClassFilter::Usb => d.class16() == 0x0c03,
            ClassFilter::Net => d.base_class() == 0x02,
            ClassFilter::Storage => d.base_class() == 0x01,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn config(vendor: u16, device: u16, class: u32, header: u8, ss: (u16, u16)) -> Vec<u8> {
        let mut c = vec![0u8; 64];
        c[0..2].copy_from_slice(&vendor.to_le_bytes());
        c[2..4].copy_from_slice(&device.to_le_bytes());
        c[8] = 0xa1;
        c[9] = class as u8;
        c[10] = (class >> 8) as u8;
        c[11] = (class >> 16) as u8;
        c[0x0e] = header;
        c[0x2c..0x2e].copy_from_slice(&ss.0.to_le_bytes());
        c[0x2e..0x30].copy_from_slice(&ss.1.to_le_bytes());
        c
    }

    #[test]
    fn reads_config_links_and_attrs() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysfsRoot::new(dir.path());
        let a = PciAddress::new(0, 1, 0, 0);
        let d = root.device_dir(&a);
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("config"),
            config(0x10de, 0x1b80, 0x030000, 0x80, (0x1458, 0x3702)),
        )
        .unwrap();
        fs::write(d.join("driver_override"), "(null)\n").unwrap();
        fs::write(d.join("reset_method"), "flr bus\n").unwrap();
        fs::write(d.join("boot_vga"), "1\n").unwrap();
        fs::write(d.join("rom"), "").unwrap();
        std::os::unix::fs::symlink("../../../../kernel/iommu_groups/13", d.join("iommu_group")).unwrap();
        let dev = Device::read(&root, &a).unwrap();
        assert_eq!(
            (dev.vendor_id, dev.device_id, dev.class_code),
            (0x10de, 0x1b80, 0x030000)
        );
        assert_eq!(dev.revision, Some(0xa1));
        assert_eq!(dev.header_type, Some(0));
        assert!(!dev.bridge);
        assert_eq!(
            (dev.subsystem_vendor_id, dev.subsystem_device_id),
            (Some(0x1458), Some(0x3702))
        );
        assert_eq!(dev.driver, None);
        assert_eq!(dev.driver_override, None);
        assert_eq!(dev.iommu_group, Some(13));
        assert_eq!(dev.reset_methods, ["flr", "bus"]);
        assert_eq!(dev.boot_vga, Some(true));
        assert!(dev.rom);
        assert_eq!(
            dev.modalias(),
            "pci:v000010DEd00001B80sv00001458sd00003702bc03sc00i00"
        );
        assert_eq!(dev.host_role(), Some("boot GPU"));
    }

    #[test]
    fn attrs_fallback_and_bridge() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysfsRoot::new(dir.path());
        let a = PciAddress::new(0x10000, 0xe0, 0x1d, 0);
        let d = root.device_dir(&a);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("vendor"), "0x8086\n").unwrap();
        fs::write(d.join("device"), "0xa0bc\n").unwrap();
        fs::write(d.join("class"), "0x060400\n").unwrap();
        std::os::unix::fs::symlink("../../../bus/pci/drivers/pcieport", d.join("driver")).unwrap();
        let dev = Device::read(&root, &a).unwrap();
        assert!(dev.bridge);
        assert_eq!(dev.header_type, Some(1));
        assert_eq!(dev.driver.as_deref(), Some("pcieport"));
        assert_eq!(dev.boot_vga, None);
        assert!(!dev.rom);
    }

    #[test]
    fn missing_ids_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysfsRoot::new(dir.path());
        let a = PciAddress::new(0, 2, 0, 0);
        fs::create_dir_all(root.device_dir(&a)).unwrap();
        let e = Device::read(&root, &a).unwrap_err().to_string();
        assert!(e.contains("0000:02:00.0/vendor"), "{e}");
    }

    #[test]
    fn class_filters() {
        let mut d = Device::blank(PciAddress::new(0, 0, 0, 0));
        d.class_code = 0x040300;
        assert!(ClassFilter::Audio.matches(&d));
        assert!(!ClassFilter::Gpu.matches(&d));
        d.class_code = 0x010802;
        assert!(ClassFilter::Storage.matches(&d));
        assert_eq!(d.host_role(), Some("storage controller"));
        d.class_code = 0x0c0330;
        assert!(ClassFilter::Usb.matches(&d));
    }
}
