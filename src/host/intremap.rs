//! Interrupt remapping facts, the one place that reads them: the IR bit of each Intel VT-d
//! unit's extended capability register, the IR- interrupt chips of /proc/interrupts, and
//! iommufd's allow_unsafe_interrupts. `check` grades them; the iommufd diagnosis names them
//! as the cause of an EPERM.

use super::HostRoot;
use crate::pci::sysfs;

/// One Intel DMAR unit whose `intel-iommu/ecap` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarUnit {
    pub name: String,
    /// The register as the kernel prints it.
    pub raw: String,
    pub ecap: u64,
}

impl DmarUnit {
    /// ECAP.IR (bit 3): the unit can remap interrupts.
    pub fn ir(&self) -> bool {
        self.ecap & (1 << 3) != 0
    }
}

/// The units among `names` (entries of /sys/class/iommu) whose ecap reads and parses.
pub fn dmar_units<'a>(root: &HostRoot, names: impl IntoIterator<Item = &'a str>) -> Vec<DmarUnit> {
    names
        .into_iter()
        .take(256)
        .filter_map(|name| {
            let path = root.sysfs.class_iommu_dir().join(name).join("intel-iommu/ecap");
            let raw = sysfs::read_text(&path).ok().flatten()?;
            let ecap = parse_hex64(&raw)?;
            Some(DmarUnit {
                name: name.to_string(),
                raw,
                ecap,
            })
        })
        .collect()
}

/// Every unit of /sys/class/iommu with an ecap (none when the directory cannot be listed).
pub fn all_dmar_units(root: &HostRoot) -> Vec<DmarUnit> {
    let names = sysfs::dir_names(&root.sysfs.class_iommu_dir()).unwrap_or_default();
    dmar_units(root, names.iter().map(String::as_str))
}

fn parse_hex64(s: &str) -> Option<u64> {
    let t = s.trim();
    u64::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
}

/// Interrupt controller names in /proc/interrupts that say remapping is on (`IR-PCI-MSI`, ...).
pub fn ir_chips(interrupts: &str) -> Vec<String> {
    let mut chips: Vec<String> = interrupts
        .split_whitespace()
        .filter(|w| w.starts_with("IR-"))
        .map(|w| {
            // IR-PCI-MSI-0000:00:1f.2 (older kernels glue the device name on): keep the chip part.
            let mut parts: Vec<&str> = w.split('-').collect();
            parts.retain(|p| !p.contains(':'));
            parts.join("-")
        })
        .collect();
    chips.sort();
    chips.dedup();
    chips
}

/// Whether interrupt remapping is on: the IR bit of every VT-d unit, else IR- chips in
/// /proc/interrupts. None when neither can be read.
pub fn interrupt_remapping(root: &HostRoot) -> Option<bool> {
    let units = all_dmar_units(root);
    if !units.is_empty() {
        return Some(units.iter().all(DmarUnit::ir));
    }
    let irqs = root.read_proc("interrupts").ok()??;
    irqs.contains("IR-").then_some(true)
}

/// What says remapping is off, for a message.
pub fn evidence(root: &HostRoot) -> String {
    let units = all_dmar_units(root);
    if units.is_empty() {
        "no IR- interrupt chips in /proc/interrupts".into()
    } else {
        units
            .iter()
            .map(|u| format!("{} ecap {} has IR bit 3 clear", u.name, u.raw))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `/sys/module/iommufd/parameters/allow_unsafe_interrupts` (Y/N or 1/0).
pub fn iommufd_allow_unsafe(root: &HostRoot) -> Option<bool> {
    let t = sysfs::read_text(
        &root
            .sysfs
            .join("module/iommufd/parameters/allow_unsafe_interrupts"),
    )
    .ok()
    .flatten()?;
    match t.trim() {
        "Y" | "y" | "1" => Some(true),
        "N" | "n" | "0" => Some(false),
        _ => None,
    }
}
