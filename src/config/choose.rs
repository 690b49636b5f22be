//! The decisions `config` makes from what it read, each with the one-line reason it prints:
//! which functions go with the named one, whether the card is the VM's primary display,
//! whether KVM is hidden, and which cards of this node a Proxmox mapping lists.

use crate::pci::address::{AddressSpec, SlotAddress};
use crate::pci::device::Device;
use crate::pci::groups::Groups;

use super::mapping::MapEntry;
use super::{Choice, Firmware};

fn choice(option: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Choice {
    Choice {
        option,
        value: value.into(),
        reason: reason.into(),
    }
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The endpoints of `slot`, function 0 first.
fn slot_functions(all: &[Device], slot: SlotAddress) -> Vec<&Device> {
    let mut v: Vec<&Device> = all
        .iter()
        .filter(|d| !d.bridge && d.address.slot() == slot)
        .collect();
    v.sort_by_key(|d| d.address);
    v
}

/// Every device of the host, grouped or not.
pub fn all_devices(groups: &Groups) -> Vec<Device> {
    groups
        .groups
        .iter()
        .flat_map(|g| g.devices.iter())
        .chain(groups.ungrouped.iter())
        .cloned()
        .collect()
}

/// The functions to pass: what `spec` names, plus, when it names one function, the card's
/// other functions that share its IOMMU group (they must leave the host with it anyway, and
/// the guest driver expects the card whole: HDMI audio, USB-C).
pub fn functions(
    spec: &AddressSpec,
    named: Vec<Device>,
    groups: &Groups,
    only_function: bool,
) -> (Vec<Device>, Option<Choice>) {
    let AddressSpec::Function(addr) = spec else {
        return (named, None);
    };
    let all = all_devices(groups);
    let group = groups.group_of(addr);
    let siblings: Vec<Device> = slot_functions(&all, addr.slot())
        .into_iter()
        .filter(|d| d.address != *addr && group.is_some_and(|g| g.contains(&d.address)))
        .cloned()
        .collect();
    if siblings.is_empty() {
        return (named, None);
    }
    let names: Vec<String> = siblings.iter().map(|d| d.address.to_string()).collect();
    if only_function {
        let c = choice(
            "functions",
            addr.to_string(),
            format!(
                "--only-function: {} stay out although they share the IOMMU group",
                names.join(", ")
            ),
        );
        return (named, Some(c));
    }
    let mut out = named;
    out.extend(siblings);
    out.sort_by_key(|d| d.address);
    let c = choice(
        "functions",
        out.iter()
            .map(|d| d.address.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        format!(
            "{} share{} the card's IOMMU group: the whole card goes to the VM (--only-function for {addr} alone)",
            names.join(", "),
            if names.len() == 1 { "s" } else { "" }
        ),
    );
    (out, Some(c))
}

/// Whether the card is the VM's primary display: as asked, else on for the host's boot GPU
/// and for a SeaBIOS verdict on a VGA-class card.
pub fn primary(explicit: Option<bool>, first: &Device, firmware: Firmware) -> (bool, Choice) {
    let vga = first.class_code >> 8 == 0x0300;
    let (value, reason) = match explicit {
        Some(true) => (true, "--primary: the passed GPU is the VM's display, no emulated VGA".to_string()),
        Some(false) => (false, "--no-primary: the emulated display stays, the passed GPU is a second one".to_string()),
        None if first.boot_vga == Some(true) => (
            true,
            format!("{} is the host's boot GPU (boot_vga=1): the guides make it the VM's only display (--no-primary keeps an emulated one)", first.address),
        ),
        None if firmware == Firmware::Seabios && vga => (
            true,
            "SeaBIOS draws through legacy VGA, which only the primary display gets (--no-primary keeps an emulated one)".to_string(),
        ),
        None if !vga => (
            false,
            "not a VGA-class display controller: the emulated display stays (--primary drops it anyway)".to_string(),
        ),
        None => (
            false,
            "not the host's boot GPU, and OVMF draws through the card's GOP driver on any display: the emulated one stays (--primary makes the card the VM's only display)".to_string(),
        ),
    };
    (value, choice("primary", on(value), reason))
}

/// The Code 43 workarounds, with the note that new NVIDIA drivers do not need them.
pub fn hide_kvm(hide: bool, vendor_id: Option<&str>, first: &Device) -> Vec<Choice> {
    let nvidia = first.vendor_id == 0x10de;
    if !hide {
        let reason = if nvidia {
            "NVIDIA drivers from 465 on allow passthrough with KVM visible; --hide-kvm for older drivers (Code 43)"
        } else {
            "not needed: only NVIDIA drivers before 465 refuse to run under a visible hypervisor (--hide-kvm)"
        };
        return vec![choice("hide_kvm", "off", reason)];
    }
    let id = vendor_id.unwrap_or(super::DEFAULT_VENDOR_ID);
    vec![
        choice(
            "hide_kvm",
            "on",
            "--hide-kvm: KVM's CPUID signature hidden (NVIDIA drivers before 465 stop with Code 43 when they see it; 465 and later do not need this)",
        ),
        choice(
            "vendor_id",
            id,
            if vendor_id.is_some() {
                "--vendor-id: the Hyper-V vendor id the guest sees instead of \"Microsoft Hv\""
            } else {
                "the Hyper-V vendor id qemu-server itself sets for GPU passthrough (--vendor-id to change it)"
            },
        ),
    ]
}

/// The ROM BAR switch as asked.
pub fn rombar(bar: Option<bool>) -> Option<Choice> {
    bar.map(|b| {
        choice(
            "rombar",
            on(b),
            if b {
                "--rombar on: the guest sees the card's ROM BAR (the default)"
            } else {
                "--rombar off: the guest does not see the card's ROM (firmware uses no option ROM from it)"
            },
        )
    })
}

fn hex_pair(a: u16, b: u16) -> String {
    format!("{a:04x}:{b:04x}")
}

/// This node's map entry for a card given by its functions (function 0 first).
fn entry(node: &str, functions: &[&Device]) -> Option<MapEntry> {
    let first = functions.first()?;
    let path = if functions.len() > 1 {
        first.address.slot().to_string()
    } else {
        first.address.to_string()
    };
    Some(MapEntry {
        node: node.to_string(),
        path,
        id: hex_pair(first.vendor_id, first.device_id),
        subsystem_id: first
            .subsystem_vendor_id
            .zip(first.subsystem_device_id)
            .map(|(v, d)| hex_pair(v, d)),
        iommugroup: first.iommu_group,
    })
}

/// The map entries of this node: the passed card first, then every identical card (same
/// vendor:device and subsystem on function 0, the same functions) as an alternative. A card
/// whose IOMMU group holds other endpoints is left out with a note: qemu-server would bind
/// them to vfio-pci with it when it picks that alternative.
pub fn map_entries(node: &str, passed: &[Device], groups: &Groups) -> (Vec<MapEntry>, Vec<String>) {
    let mut notes = Vec::new();
    let refs: Vec<&Device> = passed.iter().collect();
    let Some(ours) = entry(node, &refs) else {
        return (Vec::new(), notes);
    };
    let mut entries = vec![ours];
    let first = &passed[0];
    let all = all_devices(groups);
    let fn_numbers: Vec<u8> = passed.iter().map(|d| d.address.function).collect();
    let mut slots: Vec<SlotAddress> = all
        .iter()
        .filter(|d| {
            !d.bridge
                && d.address.slot() != first.address.slot()
                && d.address.function == first.address.function
                && d.vendor_id == first.vendor_id
                && d.device_id == first.device_id
                && d.subsystem_vendor_id == first.subsystem_vendor_id
                && d.subsystem_device_id == first.subsystem_device_id
        })
        .map(|d| d.address.slot())
        .collect();
    slots.sort();
    slots.dedup();
    for slot in slots {
        let card: Vec<&Device> = slot_functions(&all, slot)
            .into_iter()
            .filter(|d| fn_numbers.contains(&d.address.function))
            .collect();
        if card.len() != passed.len() {
            continue;
        }
        let mut strangers: Vec<String> = Vec::new();
        for d in &card {
            if let Some(g) = groups.group_of(&d.address) {
                for e in g.endpoints() {
                    let name = e.address.to_string();
                    if e.address.slot() != slot && !strangers.contains(&name) {
                        strangers.push(name);
                    }
                }
            }
        }
        if strangers.is_empty() {
            entries.extend(entry(node, &card));
        } else {
            notes.push(format!(
                "identical card {slot} left out of the mapping: its IOMMU group also holds {}, which qemu-server would take from the host with it",
                strangers.join(", ")
            ));
        }
    }
    (entries, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::address::PciAddress;

    fn dev(addr: &str, vendor: u16, device: u16, class: u32, group: u32) -> Device {
        let mut d = Device::blank(addr.parse::<PciAddress>().unwrap());
        d.vendor_id = vendor;
        d.device_id = device;
        d.class_code = class;
        d.iommu_group = Some(group);
        d.subsystem_vendor_id = Some(0x10de);
        d.subsystem_device_id = Some(0x1454);
        d
    }

    fn host() -> Groups {
        Groups::from_devices(vec![
            dev("0000:17:00.0", 0x10de, 0x2204, 0x030000, 1),
            dev("0000:17:00.1", 0x10de, 0x1aef, 0x040300, 1),
            dev("0000:42:00.0", 0x10de, 0x2204, 0x030000, 30),
            dev("0000:42:00.1", 0x10de, 0x1aef, 0x040300, 30),
            dev("0000:44:00.0", 0x144d, 0xa808, 0x010802, 30),
            dev("0000:65:00.0", 0x10de, 0x2204, 0x030000, 40),
            dev("0000:65:00.1", 0x10de, 0x1aef, 0x040300, 40),
        ])
    }

    #[test]
    fn a_named_function_brings_its_group_siblings_on_the_card() {
        let g = host();
        let spec = AddressSpec::parse("17:00.0").unwrap();
        let named = vec![g.groups[0].devices[0].clone()];
        let (f, c) = functions(&spec, named.clone(), &g, false);
        assert_eq!(f.len(), 2);
        assert_eq!(c.unwrap().value, "0000:17:00.0 0000:17:00.1");
        let (f, c) = functions(&spec, named, &g, true);
        assert_eq!(f.len(), 1);
        assert!(c.unwrap().reason.starts_with("--only-function"));
    }

    #[test]
    fn identical_cards_become_alternatives_unless_their_group_is_shared() {
        let g = host();
        let passed: Vec<Device> = g.groups[0].devices.clone();
        let (entries, notes) = map_entries("pve1", &passed, &g);
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["0000:17:00", "0000:65:00"]);
        assert_eq!(entries[1].iommugroup, Some(40));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("0000:42:00") && notes[0].contains("0000:44:00.0"));
    }

    #[test]
    fn primary_defaults_follow_boot_vga_and_seabios() {
        let mut d = dev("0000:17:00.0", 0x10de, 0x2204, 0x030000, 1);
        assert!(!primary(None, &d, Firmware::Ovmf).0);
        assert!(primary(None, &d, Firmware::Seabios).0);
        d.boot_vga = Some(true);
        assert!(primary(None, &d, Firmware::Ovmf).0);
        assert!(!primary(Some(false), &d, Firmware::Seabios).0);
        d.class_code = 0x00ff00;
        d.boot_vga = None;
        assert!(!primary(None, &d, Firmware::Seabios).0, "not a VGA device");
    }
}
