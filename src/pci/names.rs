//! Vendor, device, subsystem and class names from the system's `pci.ids`.
//!
//! The file is read once (about 1.3 MB) and scanned in a single pass that keeps only the entries
//! asked for ([`NameQuery`]): nothing else is parsed or allocated. When no `pci.ids` exists the
//! callers fall back to numeric IDs, as `lspci` does.
//!
//! Format (from the file's own header): `vvvv  vendor`, `\tdddd  device`,
//! `\t\tssvv ssdd  subsystem`; after `C cc  class`: `\tss  subclass`, `\t\tpp  prog-if`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::PathError;
use crate::pci::device::Device;
use crate::pci::sysfs;

/// Where `lspci` looks for the database on Debian, Fedora and Arch.
pub const SYSTEM_PATHS: [&str; 3] = [
    "/usr/share/hwdata/pci.ids",
    "/usr/share/misc/pci.ids",
    "/usr/share/pci.ids",
];

/// Largest `pci.ids` read (the real one is under 2 MB).
const MAX_PCI_IDS: u64 = 64 * 1024 * 1024;

/// The first system `pci.ids` that exists.
pub fn find_system_pci_ids() -> Option<PathBuf> {
    SYSTEM_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Class names used when there is no `pci.ids` (minimal systems, the test guest): the PCI
/// class codes of the devices passthrough is about (PCI Code and ID Assignment Specification).
const BUILTIN_CLASSES: [(u16, &str); 22] = [
    (0x0100, "SCSI storage controller"),
    (0x0104, "RAID bus controller"),
    (0x0106, "SATA controller"),
    (0x0107, "Serial Attached SCSI controller"),
    (0x0108, "Non-Volatile memory controller"),
    (0x0200, "Ethernet controller"),
    (0x0280, "Network controller"),
    (0x0300, "VGA compatible controller"),
    (0x0301, "XGA compatible controller"),
    (0x0302, "3D controller"),
    (0x0380, "Display controller"),
    (0x0401, "Multimedia audio controller"),
    (0x0403, "Audio device"),
    (0x0600, "Host bridge"),
    (0x0601, "ISA bridge"),
    (0x0604, "PCI bridge"),
    (0x0607, "CardBus bridge"),
    (0x0c03, "USB controller"),
    (0x0c05, "SMBus"),
    (0x00ff, "Unclassified device"),
    (0x1200, "Processing accelerators"),
    (0xff00, "Unassigned class"),
];

/// The IDs whose names are wanted.
#[derive(Debug, Default, Clone)]
pub struct NameQuery {
    vendors: HashSet<u16>,
    devices: HashSet<(u16, u16)>,
    subsystems: HashSet<(u16, u16, u16, u16)>,
    classes: HashSet<u8>,
    subclasses: HashSet<(u8, u8)>,
}

impl NameQuery {
    /// Ask for everything `list` prints about `d`.
    pub fn add_device(&mut self, d: &Device) {
        self.vendors.insert(d.vendor_id);
        self.devices.insert((d.vendor_id, d.device_id));
        if let (Some(sv), Some(sd)) = (d.subsystem_vendor_id, d.subsystem_device_id) {
            self.vendors.insert(sv);
            self.subsystems.insert((d.vendor_id, d.device_id, sv, sd));
        }
        self.classes.insert(d.base_class());
        self.subclasses.insert((d.base_class(), d.subclass()));
    }
}

/// The names found for one [`NameQuery`].
#[derive(Debug, Default, Clone)]
pub struct Names {
    vendors: HashMap<u16, String>,
    devices: HashMap<(u16, u16), String>,
    subsystems: HashMap<(u16, u16, u16, u16), String>,
    classes: HashMap<u8, String>,
    subclasses: HashMap<(u8, u8), String>,
}

fn hex_u16(s: &[u8]) -> Option<u16> {
    if s.len() != 4 {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

fn hex_u8(s: &[u8]) -> Option<u8> {
    if s.len() != 2 {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

/// The name part after the ID and its separating spaces/tab.
fn name_of(rest: &[u8]) -> String {
    String::from_utf8_lossy(rest).trim().to_string()
}

impl Names {
    /// Names with no database: every lookup falls back to numbers.
    pub fn empty() -> Names {
        Names::default()
    }

    /// Read `path` and resolve `query`.
    pub fn load(path: &Path, query: &NameQuery) -> Result<Names, PathError> {
        let data = sysfs::read_bytes(path, MAX_PCI_IDS)?.unwrap_or_default();
        Ok(Names::resolve(&data, query))
    }

    /// The first system `pci.ids` (or none: numeric fallback), resolved for `query`.
    pub fn load_system(query: &NameQuery) -> Result<Names, PathError> {
        match find_system_pci_ids() {
            Some(p) => Names::load(&p, query),
            None => Ok(Names::empty()),
        }
    }

    /// One pass over the bytes of a `pci.ids` file keeping only what `query` asks for.
    pub fn resolve(data: &[u8], q: &NameQuery) -> Names {
        let mut n = Names::default();
        let mut in_classes = false;
        // The current vendor / device / class, when wanted; None means "skip its children".
        let mut vendor: Option<u16> = None;
        let mut device: Option<u16> = None;
        let mut class: Option<u8> = None;
        for line in data.split(|b| *b == b'\n') {
            let Some(&first) = line.first() else { continue };
            if first == b'#' {
                continue;
            }
            if first != b'\t' {
                device = None;
                if line.starts_with(b"C ") {
                    in_classes = true;
                    vendor = None;
                    class = line.get(2..4).and_then(hex_u8);
                    if let Some(c) = class {
                        if q.classes.contains(&c) || q.subclasses.iter().any(|(b, _)| *b == c) {
                            n.classes.insert(c, name_of(line.get(4..).unwrap_or_default()));
                        } else {
                            class = None;
                        }
                    }
                    continue;
                }
                if in_classes || line.len() < 6 {
                    // Other sections after the classes (none today) or garbage: ignore.
                    vendor = None;
                    class = None;
                    continue;
                }
                vendor = hex_u16(&line[..4]);
                if let Some(v) = vendor {
                    if q.vendors.contains(&v) {
                        n.vendors.insert(v, name_of(&line[4..]));
                    }
                }
                continue;
            }
            let second_tab = line.get(1) == Some(&b'\t');
            if in_classes {
                let Some(c) = class else { continue };
                if !second_tab {
                    if let Some(s) = line.get(1..3).and_then(hex_u8) {
                        if q.subclasses.contains(&(c, s)) {
                            n.subclasses
                                .insert((c, s), name_of(line.get(3..).unwrap_or_default()));
                        }
                    }
                }
                continue;
            }
            let Some(v) = vendor else { continue };
            if !second_tab {
                device = line.get(1..5).and_then(hex_u16);
                if let Some(d) = device {
                    if q.devices.contains(&(v, d)) {
                        n.devices
                            .insert((v, d), name_of(line.get(5..).unwrap_or_default()));
                    }
                }
            } else if let Some(d) = device {
                let (Some(sv), Some(sd)) = (
                    line.get(2..6).and_then(hex_u16),
                    line.get(7..11).and_then(hex_u16),
                ) else {
                    continue;
                };
                if q.subsystems.contains(&(v, d, sv, sd)) {
                    n.subsystems
                        .insert((v, d, sv, sd), name_of(line.get(11..).unwrap_or_default()));
                }
            }
        }
        n
    }

    pub fn vendor(&self, v: u16) -> Option<&str> {
        self.vendors.get(&v).map(String::as_str)
    }

    pub fn device(&self, v: u16, d: u16) -> Option<&str> {
        self.devices.get(&(v, d)).map(String::as_str)
    }

    /// The subsystem's own name, or the device name when the subsystem IDs equal the device IDs
    /// (as `lspci` does).
    pub fn subsystem(&self, v: u16, d: u16, sv: u16, sd: u16) -> Option<&str> {
        self.subsystems
            .get(&(v, d, sv, sd))
            .map(String::as_str)
            .or_else(|| {
                if (sv, sd) == (v, d) {
                    self.device(v, d)
                } else {
                    None
                }
            })
    }

    /// The subclass name, else the base class name (from `pci.ids`, else the built-in names of
    /// the classes passthrough cares about), else `Class cccc` (lspci's order).
    pub fn class(&self, class_code: u32) -> String {
        let base = (class_code >> 16) as u8;
        let sub = (class_code >> 8) as u8;
        if let Some(s) = self.subclasses.get(&(base, sub)) {
            return s.clone();
        }
        if let Some(b) = self.classes.get(&base) {
            return b.clone();
        }
        if let Some((_, name)) = BUILTIN_CLASSES
            .iter()
            .find(|(c, _)| *c == (class_code >> 8) as u16)
        {
            return (*name).to_string();
        }
        format!("Class {base:02x}{sub:02x}")
    }

    /// `Vendor name`, or `Vendor vvvv` when unknown.
    pub fn vendor_or_number(&self, v: u16) -> String {
        self.vendor(v)
            .map_or_else(|| format!("Vendor {v:04x}"), str::to_string)
    }

    /// `Device name`, or `Device dddd` when unknown.
    pub fn device_or_number(&self, v: u16, d: u16) -> String {
        self.device(v, d)
            .map_or_else(|| format!("Device {d:04x}"), str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::address::PciAddress;

    const IDS: &str = "# comment\n\
10de  NVIDIA Corporation\n\
\t1b80  GP104 [GeForce GTX 1080]\n\
\t\t1458 3702  GeForce GTX 1080 G1 Gaming\n\
\t10f0  GP104 High Definition Audio Controller\n\
1458  Gigabyte Technology Co., Ltd\n\
8086  Intel Corporation\n\
C 03  Display controller\n\
\t00  VGA compatible controller\n\
\t\t00  VGA controller\n\
C 04  Multimedia controller\n\
\t03  Audio device\n\
C 12  Processing accelerators\n";

    fn dev(v: u16, d: u16, class: u32, ss: Option<(u16, u16)>) -> Device {
        Device {
            vendor_id: v,
            device_id: d,
            class_code: class,
            header_type: Some(0),
            subsystem_vendor_id: ss.map(|s| s.0),
            subsystem_device_id: ss.map(|s| s.1),
            ..Device::blank(PciAddress::new(0, 1, 0, 0))
        }
    }

    #[test]
    fn resolves_only_what_is_asked() {
        let mut q = NameQuery::default();
        q.add_device(&dev(0x10de, 0x1b80, 0x030000, Some((0x1458, 0x3702))));
        q.add_device(&dev(0x10de, 0x9999, 0x120000, None));
        let n = Names::resolve(IDS.as_bytes(), &q);
        assert_eq!(n.vendor(0x10de), Some("NVIDIA Corporation"));
        assert_eq!(n.vendor(0x1458), Some("Gigabyte Technology Co., Ltd"));
        assert_eq!(n.vendor(0x8086), None, "not asked for");
        assert_eq!(n.device(0x10de, 0x1b80), Some("GP104 [GeForce GTX 1080]"));
        assert_eq!(n.device(0x10de, 0x10f0), None, "not asked for");
        assert_eq!(
            n.subsystem(0x10de, 0x1b80, 0x1458, 0x3702),
            Some("GeForce GTX 1080 G1 Gaming")
        );
        assert_eq!(n.class(0x030000), "VGA compatible controller");
        assert_eq!(n.class(0x120000), "Processing accelerators");
        assert_eq!(
            n.class(0x040300),
            "Audio device",
            "built-in name without the subclass in pci.ids"
        );
        assert_eq!(n.class(0x0c0700), "Class 0c07");
        assert_eq!(n.device_or_number(0x10de, 0x9999), "Device 9999");
    }

    #[test]
    fn empty_database_gives_numbers() {
        let n = Names::empty();
        assert_eq!(n.vendor_or_number(0x1af4), "Vendor 1af4");
        assert_eq!(n.class(0x010802), "Non-Volatile memory controller");
        assert_eq!(n.class(0x088000), "Class 0880");
    }
}
