//! VM configuration from what vfiotool knows: the device's functions, the firmware the ROM
//! verdict calls for, and a romfile. Proxmox, libvirt and plain QEMU each get their own syntax;
//! `persist` makes the vfio-pci binding survive reboots.
//!
//! The generators here are pure: they take a [`Passthrough`] and return text and notes. Reading
//! sysfs and ROMs is the command's job, so these stay testable against the real consumers
//! (virt-xml-validate, qemu-system-x86_64) without a GPU.

pub mod choose;
pub mod libvirt;
pub mod mapping;
pub mod persist;
pub mod proxmox;
pub mod qemu;

use std::path::PathBuf;

use serde::Serialize;

use crate::pci::address::PciAddress;

/// The firmware a VM should boot with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Ovmf,
    Seabios,
}

impl Firmware {
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Ovmf => "ovmf",
            Firmware::Seabios => "seabios",
        }
    }
}

/// One function to pass through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Function {
    pub address: PciAddress,
    /// base class << 16 | subclass << 8 | prog-if.
    pub class_code: u32,
}

impl Function {
    /// A VGA-compatible display controller (class 0300): the one legacy VGA (x-vga) applies to.
    pub fn is_vga(&self) -> bool {
        self.class_code >> 8 == 0x0300
    }
}

/// The settings the passthrough guides write by hand, the same for every target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The passed GPU is the VM's display: no emulated VGA.
    pub primary: bool,
    /// The Code 43 workarounds: KVM's CPUID signature hidden and a Hyper-V vendor id set.
    pub hide_kvm: bool,
    /// The Hyper-V vendor id (checked by [`check_vendor_id`]); set whenever `hide_kvm` is.
    pub vendor_id: Option<String>,
    /// The ROM BAR switch; `None` leaves the default (visible).
    pub rombar: Option<bool>,
    /// Open the device through iommufd and its VFIO cdev instead of the legacy group (QEMU's
    /// `-object iommufd`, libvirt's `<driver iommufd='yes'/>`).
    pub iommufd: bool,
}

/// One setting as printed: its name, value and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// `primary`, `hide_kvm`, `vendor_id`, `rombar`, `romfile` or `functions`.
    pub option: &'static str,
    pub value: String,
    pub reason: String,
}

/// The Hyper-V vendor id default: the value qemu-server itself sets for GPU passthrough.
pub const DEFAULT_VENDOR_ID: &str = "proxmox";

/// An option value a consumer would reject, one variant per checked option (the messages are
/// the usage errors users see).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error(
        "--vendor-id {0:?}: must be 1 to 12 letters or digits (Proxmox's cpu hv-vendor-id format; libvirt and QEMU take at most 12 characters)"
    )]
    VendorId(String),
    #[error("--romfile {}: Proxmox's romfile= takes a name without `,` or `;`: rename the file", .0.display())]
    RomfileName(PathBuf),
    #[error(
        "--mapping {0:?}: Proxmox rejects it (a mapping id is a letter followed by at least one letter, digit or `_`, pve-configid)"
    )]
    MappingId(String),
    #[error("--node {0:?}: Proxmox rejects it (a node name is letters, digits and inner `-`, pve-node)")]
    NodeName(String),
}

/// A Hyper-V vendor id all three consumers take as it is: Proxmox's cpu format allows
/// `[a-zA-Z0-9]{1,12}`, libvirt's schema `[^,]{0,12}`, QEMU truncates past 12 bytes (and `,`
/// would end its option). So 1 to 12 ASCII letters or digits.
pub fn check_vendor_id(id: &str) -> Result<(), OptionError> {
    if id.is_empty() || id.len() > 12 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(OptionError::VendorId(id.to_string()));
    }
    Ok(())
}

/// What to pass through and how.
#[derive(Debug, Clone)]
pub struct Passthrough {
    /// All functions of one slot, function 0 first.
    pub functions: Vec<Function>,
    pub firmware: Firmware,
    /// Why this firmware: the ROM verdict line, or what the user chose.
    pub firmware_reason: String,
    /// A ROM file to give the guest instead of the card's own (a patched NVIDIA dump, say).
    pub romfile: Option<PathBuf>,
    pub settings: Settings,
    /// The settings with their reasons, as printed.
    pub choices: Vec<Choice>,
}

impl Passthrough {
    /// QEMU's `x-vga=on` (legacy VGA ranges and the VGA BIOS): for a primary VGA-class device
    /// under SeaBIOS. OVMF uses GOP and needs no VGA ranges; qemu-server leaves x-vga=on out
    /// under OVMF as well, while still deriving `vga: none` and `kvm=off` from `x-vga=1`.
    pub fn x_vga(&self) -> bool {
        self.settings.primary && self.firmware == Firmware::Seabios && self.first_is_vga()
    }

    pub fn first_is_vga(&self) -> bool {
        self.functions.first().is_some_and(Function::is_vga)
    }

    pub fn multifunction(&self) -> bool {
        self.functions.len() > 1
    }

    /// The Hyper-V vendor id to write, when KVM is hidden.
    pub fn vendor_id(&self) -> Option<&str> {
        if !self.settings.hide_kvm {
            return None;
        }
        Some(self.settings.vendor_id.as_deref().unwrap_or(DEFAULT_VENDOR_ID))
    }
}

/// A generated configuration, as printed and as `vfiotool.config/1` JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// "proxmox", "libvirt" or "qemu".
    pub target: &'static str,
    pub firmware: Firmware,
    pub firmware_reason: String,
    pub machine: &'static str,
    pub x_vga: bool,
    pub functions: Vec<PciAddress>,
    pub romfile: Option<PathBuf>,
    /// Every setting with its value and a one-line reason.
    pub options: Vec<Choice>,
    /// Proxmox `--mapping`: the cluster mapping written (null otherwise).
    pub mapping: Option<mapping::Mapping>,
    /// The configuration text to paste (a `hostpciN:` line, XML, or a shell-quoted command line).
    pub text: String,
    /// A command that applies it, where there is one (`qm set ...`).
    pub command: Option<String>,
    /// QEMU arguments, one per element (QEMU only).
    pub args: Vec<String>,
    /// What the user must still do or know.
    pub notes: Vec<String>,
}

impl Generated {
    pub(crate) fn new(target: &'static str, p: &Passthrough) -> Self {
        Generated {
            target,
            firmware: p.firmware,
            firmware_reason: p.firmware_reason.clone(),
            machine: "q35",
            x_vga: p.x_vga(),
            functions: p.functions.iter().map(|f| f.address).collect(),
            romfile: p.romfile.clone(),
            options: p.choices.clone(),
            mapping: None,
            text: String::new(),
            command: None,
            args: Vec::new(),
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    use super::*;

    pub fn gpu(firmware: Firmware, romfile: Option<&str>) -> Passthrough {
        let addr = |f| PciAddress {
            domain: 0,
            bus: 1,
            device: 0,
            function: f,
        };
        Passthrough {
            functions: vec![
                Function {
                    address: addr(0),
                    class_code: 0x030000,
                },
                Function {
                    address: addr(1),
                    class_code: 0x040300,
                },
            ],
            firmware,
            firmware_reason: "test".into(),
            romfile: romfile.map(PathBuf::from),
            settings: Settings::default(),
            choices: Vec::new(),
        }
    }

    pub fn primary(mut p: Passthrough) -> Passthrough {
        p.settings.primary = true;
        p
    }
}
