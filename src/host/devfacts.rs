//! Per-device facts that `check` and `explain` both read: BARs from sysfs `resource`, the
//! firmware framebuffers in `/proc/iomem`, NUMA node, D3cold, and the AMD GPU families with the
//! reset bug. Every reader is total: a missing or malformed file gives `None` or an empty list.

use crate::host::HostRoot;
use crate::pci::address::PciAddress;
use crate::pci::sysfs;

/// One memory BAR of a device (`resource` line `start end flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub index: usize,
    pub start: u64,
    pub end: u64,
    pub flags: u64,
}

/// `IORESOURCE_MEM` (include/linux/ioport.h).
const IORESOURCE_MEM: u64 = 0x200;
/// `IORESOURCE_MEM_64`.
const IORESOURCE_MEM_64: u64 = 0x0010_0000;
/// `IORESOURCE_PREFETCH`.
const IORESOURCE_PREFETCH: u64 = 0x2000;

impl Bar {
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start).saturating_add(1)
    }
    pub fn is_64bit(&self) -> bool {
        self.flags & IORESOURCE_MEM_64 != 0
    }
    pub fn prefetchable(&self) -> bool {
        self.flags & IORESOURCE_PREFETCH != 0
    }
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// Memory BARs 0-5 from sysfs `resource` (the ROM, line 6, is left out).
pub fn parse_resource(text: &str) -> Vec<Bar> {
    text.lines()
        .take(6)
        .enumerate()
        .filter_map(|(index, line)| {
            let mut w = line.split_whitespace();
            let (start, end, flags) = (hex(w.next()?)?, hex(w.next()?)?, hex(w.next()?)?);
            (flags & IORESOURCE_MEM != 0 && end > start).then_some(Bar {
                index,
                start,
                end,
                flags,
            })
        })
        .collect()
}

pub fn bars(root: &HostRoot, addr: &PciAddress) -> Vec<Bar> {
    root.sysfs
        .read_device_attr(addr, "resource")
        .ok()
        .flatten()
        .map(|t| parse_resource(&t))
        .unwrap_or_default()
}

/// Names in `/proc/iomem` that belong to a firmware framebuffer driver.
pub const FB_NAMES: [&str; 7] = [
    "efifb",
    "simplefb",
    "simpledrm",
    "simple-framebuffer",
    "vesafb",
    "vesa-framebuffer",
    "BOOTFB",
];

/// Framebuffer ranges in `/proc/iomem`: (start, end, name). Needs root to see real addresses
/// (non-root reads zeros, which then overlap nothing).
pub fn iomem_framebuffers(iomem: &str) -> Vec<(u64, u64, String)> {
    iomem
        .lines()
        .take(100_000)
        .filter_map(|line| {
            let (range, name) = line.split_once(" : ")?;
            let name = name.trim();
            FB_NAMES.iter().find(|fb| name.starts_with(**fb))?;
            let (s, e) = range.trim().split_once('-')?;
            Some((hex(s)?, hex(e)?, name.to_string()))
        })
        .collect()
}

/// A device attribute as trimmed text.
pub fn attr(root: &HostRoot, addr: &PciAddress, name: &str) -> Option<String> {
    root.sysfs
        .read_device_attr(addr, name)
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
}

/// `numa_node` (-1 = none, as the kernel reports on single-node hosts).
pub fn numa_node(root: &HostRoot, addr: &PciAddress) -> Option<i32> {
    attr(root, addr, "numa_node")?.parse().ok()
}

/// `d3cold_allowed` (1/0).
pub fn d3cold_allowed(root: &HostRoot, addr: &PciAddress) -> Option<bool> {
    match attr(root, addr, "d3cold_allowed")?.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// AMD GPU families known for the reset bug (the device does not come back after the guest
/// used it), by device ID, as vendor-reset's device table groups them (src/device-db.h).
pub fn amd_reset_bug_family(vendor: u16, device: u16) -> Option<&'static str> {
    if vendor != 0x1002 {
        return None;
    }
    let fam = match device {
        0x67c0..=0x67df => "Polaris 10",
        0x67e0..=0x67ff => "Polaris 11",
        0x6980..=0x699f => "Polaris 12",
        0x6860..=0x687f => "Vega 10",
        0x69a0..=0x69af => "Vega 12",
        0x66a0..=0x66af => "Vega 20",
        0x7310..=0x731f => "Navi 10",
        0x7340..=0x734f => "Navi 14",
        0x7360..=0x736f => "Navi 12",
        _ => return None,
    };
    Some(fam)
}

/// A module parameter under `/sys/module/<m>/parameters/<p>`.
pub fn module_param(root: &HostRoot, module: &str, param: &str) -> Option<String> {
    sysfs::read_text(&root.sysfs.module_dir(module).join("parameters").join(param))
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lines() {
        let text = "0x00000000f6000000 0x00000000f6ffffff 0x0000000000040200\n\
                    0x000000e000000000 0x000000efffffffff 0x000000000014220c\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    garbage\n\
                    0x000000000000e000 0x000000000000e07f 0x0000000000040101\n";
        let b = parse_resource(text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].size(), 16 << 20);
        assert!(!b[0].is_64bit());
        assert_eq!(b[1].index, 1);
        assert!(b[1].is_64bit() && b[1].prefetchable());
        assert_eq!(b[1].size(), 64 << 30);
    }

    #[test]
    fn framebuffers_and_families() {
        let iomem = "e0000000-efffffff : 0000:01:00.0\n  e0000000-e07fffff : efifb\nf0000000-f0ffffff : x\n";
        assert_eq!(
            iomem_framebuffers(iomem),
            [(0xe000_0000, 0xe07f_ffff, "efifb".to_string())]
        );
        assert_eq!(amd_reset_bug_family(0x1002, 0x731f), Some("Navi 10"));
        assert_eq!(amd_reset_bug_family(0x1002, 0x73bf), None);
        assert_eq!(amd_reset_bug_family(0x10de, 0x731f), None);
    }
}
