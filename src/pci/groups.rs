//! IOMMU groups and the isolation verdict.
//!
//! The unit of passthrough is the group: every endpoint in it must go to the guest (or be left
//! driverless / on vfio-pci). Bridges in a group do not matter (they are never bound to
//! vfio-pci and do not block viability). Verdicts:
//! - [`Verdict::Isolated`]: every device in the group is a function of one slot (a GPU and its
//!   HDMI audio are one slot: pass both);
//! - [`Verdict::IsolatedExceptBridges`]: the same once PCI bridges are left out;
//! - [`Verdict::Shared`]: endpoints of more than one slot share the group; passing one means
//!   taking the others from the host ([`IommuGroup::host_critical`] names the risky ones).
//!
//! Devices without an `iommu_group` link (no IOMMU, or the IOMMU is off) land in
//! [`Groups::ungrouped`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::PathError;
use crate::pci::address::{PciAddress, SlotAddress};
use crate::pci::device::Device;
use crate::pci::sysfs::{self, SysfsRoot};

/// How well a group isolates its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Isolated,
    IsolatedExceptBridges,
    Shared,
}

impl Verdict {
    /// The JSON name (`"isolated_except_bridges"`).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Isolated => "isolated",
            Verdict::IsolatedExceptBridges => "isolated_except_bridges",
            Verdict::Shared => "shared",
        }
    }
}

/// A device in a shared group that the host probably needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCritical {
    pub address: PciAddress,
    pub role: &'static str,
}

/// One IOMMU group and its devices (sorted by address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IommuGroup {
    pub group: u32,
    pub verdict: Verdict,
    pub devices: Vec<Device>,
    /// The distinct slots of the group's endpoints (non-bridges).
    pub slots: Vec<SlotAddress>,
    /// Endpoints of a shared group whose class says the host needs them (storage, network,
    /// USB, chipset, the boot GPU). Empty unless the verdict is `shared`.
    pub host_critical: Vec<HostCritical>,
}

impl IommuGroup {
    /// Build a group and its verdict from its member devices.
    pub fn new(group: u32, mut devices: Vec<Device>) -> IommuGroup {
        devices.sort_by_key(|d| d.address);
        let mut slots: Vec<SlotAddress> = devices
            .iter()
            .filter(|d| !d.bridge)
            .map(|d| d.address.slot())
            .collect();
        slots.dedup();
        let has_bridges = devices.iter().any(|d| d.bridge);
        let verdict = match (slots.len() > 1, has_bridges) {
            (true, _) => Verdict::Shared,
            (false, false) => Verdict::Isolated,
            (false, true) => Verdict::IsolatedExceptBridges,
        };
        let host_critical = if verdict == Verdict::Shared {
            devices
                .iter()
                .filter(|d| !d.bridge)
                .filter_map(|d| {
                    d.host_role().map(|role| HostCritical {
                        address: d.address,
                        role,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        IommuGroup {
            group,
            verdict,
            devices,
            slots,
            host_critical,
        }
    }

    /// Devices that would have to be bound to vfio-pci (everything but bridges).
    pub fn endpoints(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(|d| !d.bridge)
    }

    pub fn contains(&self, addr: &PciAddress) -> bool {
        self.devices.iter().any(|d| d.address == *addr)
    }
}

/// Every group of a host plus the devices that have none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Groups {
    pub groups: Vec<IommuGroup>,
    pub ungrouped: Vec<Device>,
}

impl Groups {
    /// Sort devices into their groups (by each device's `iommu_group`), groups by number.
    pub fn from_devices(devices: Vec<Device>) -> Groups {
        let mut by_group: BTreeMap<u32, Vec<Device>> = BTreeMap::new();
        let mut ungrouped = Vec::new();
        for d in devices {
            match d.iommu_group {
                Some(g) => by_group.entry(g).or_default().push(d),
                None => ungrouped.push(d),
            }
        }
        Groups {
            groups: by_group
                .into_iter()
                .map(|(g, devs)| IommuGroup::new(g, devs))
                .collect(),
            ungrouped,
        }
    }

    /// Read every device under `root` and group them.
    pub fn read(root: &SysfsRoot) -> Result<Groups, PathError> {
        Ok(Self::from_devices(Device::read_all(root)?))
    }

    /// The group that holds `addr`, if any.
    pub fn group_of(&self, addr: &PciAddress) -> Option<&IommuGroup> {
        self.groups.iter().find(|g| g.contains(addr))
    }
}

/// The members of group `group` as the kernel lists them in
/// `<root>/kernel/iommu_groups/<group>/devices` (non-PCI entries skipped), sorted.
pub fn group_members(root: &SysfsRoot, group: u32) -> Result<Vec<PciAddress>, PathError> {
    let dir = root.iommu_groups_dir().join(group.to_string()).join("devices");
    let mut out: Vec<PciAddress> = sysfs::dir_names(&dir)?
        .iter()
        .filter_map(|n| PciAddress::parse(n).ok())
        .collect();
    out.sort();
    Ok(out)
}

/// Group numbers present under `<root>/kernel/iommu_groups` (empty without an IOMMU).
pub fn group_numbers(root: &SysfsRoot) -> Result<Vec<u32>, PathError> {
    let mut out: Vec<u32> = sysfs::dir_names(&root.iommu_groups_dir())?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(addr: &str, class: u32, group: Option<u32>) -> Device {
        Device {
            address: PciAddress::parse(addr).unwrap(),
            vendor_id: 0x8086,
            device_id: 1,
            class_code: class,
            revision: None,
            header_type: Some(if class >> 8 == 0x0604 { 1 } else { 0 }),
            subsystem_vendor_id: None,
            subsystem_device_id: None,
            driver: None,
            driver_override: None,
            iommu_group: group,
            reset_methods: vec![],
            boot_vga: None,
            rom: false,
            bridge: class >> 8 == 0x0604,
        }
    }

    #[test]
    fn verdicts() {
        let g = Groups::from_devices(vec![
            dev("01:00.0", 0x030000, Some(1)),
            dev("01:00.1", 0x040300, Some(1)),
            dev("00:01.0", 0x060400, Some(2)),
            dev("02:00.0", 0x030000, Some(2)),
            dev("00:1f.0", 0x060100, Some(3)),
            dev("00:1f.3", 0x040300, Some(3)),
            dev("00:1d.0", 0x010802, Some(3)),
            dev("00:1c.0", 0x060400, Some(4)),
            dev("03:00.0", 0x030000, None),
        ]);
        let v: Vec<(u32, Verdict)> = g.groups.iter().map(|g| (g.group, g.verdict)).collect();
        assert_eq!(
            v,
            [
                (1, Verdict::Isolated),
                (2, Verdict::IsolatedExceptBridges),
                (3, Verdict::Shared),
                (4, Verdict::IsolatedExceptBridges)
            ]
        );
        let shared = &g.groups[2];
        let roles: Vec<String> = shared
            .host_critical
            .iter()
            .map(|h| format!("{} {}", h.address, h.role))
            .collect();
        assert_eq!(
            roles,
            [
                "0000:00:1d.0 storage controller",
                "0000:00:1f.0 ISA bridge (chipset)"
            ]
        );
        assert_eq!(shared.slots.len(), 2);
        assert!(g.groups[0].host_critical.is_empty());
        assert_eq!(g.ungrouped.len(), 1);
        assert_eq!(g.group_of(&PciAddress::new(0, 2, 0, 0)).map(|g| g.group), Some(2));
        assert_eq!(g.groups[1].endpoints().count(), 1);
        assert_eq!(
            serde_json::to_value(Verdict::IsolatedExceptBridges).unwrap(),
            "isolated_except_bridges"
        );
    }
}
