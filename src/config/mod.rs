//! VM configuration from what vfiotool knows: the device's functions, the firmware the ROM
//! verdict calls for, and a romfile. Proxmox, libvirt and plain QEMU each get their own syntax;
//! `persist` makes the vfio-pci binding survive reboots.
//!
//! The generators here are pure: they take a [`Passthrough`] and return text and notes. Reading
//! sysfs and ROMs is the command's job, so these stay testable against the real consumers
//! (virt-xml-validate, qemu-system-x86_64) without a GPU.

pub mod libvirt;
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

/// What to pass through and how.
#[derive(Debug, Clone, Serialize)]
pub struct Passthrough {
    /// All functions of one slot, function 0 first.
    pub functions: Vec<Function>,
    pub firmware: Firmware,
    /// Why this firmware: the ROM verdict line, or what the user chose.
    pub firmware_reason: String,
    /// A ROM file to give the guest instead of the card's own (a patched NVIDIA dump, say).
    pub romfile: Option<PathBuf>,
}

impl Passthrough {
    /// Legacy VGA routing is for a primary VGA device under SeaBIOS; OVMF uses GOP and needs no
    /// VGA ranges (Proxmox drops x-vga for OVMF too).
    pub fn x_vga(&self) -> bool {
        self.firmware == Firmware::Seabios && self.functions.first().is_some_and(Function::is_vga)
    }

    pub fn multifunction(&self) -> bool {
        self.functions.len() > 1
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
    fn new(target: &'static str, p: &Passthrough) -> Self {
        Generated {
            target,
            firmware: p.firmware,
            firmware_reason: p.firmware_reason.clone(),
            machine: "q35",
            x_vga: p.x_vga(),
            functions: p.functions.iter().map(|f| f.address).collect(),
            romfile: p.romfile.clone(),
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
        }
    }
}
