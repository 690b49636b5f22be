//! What the two VM firmwares do with a ROM, modelled on their sources rather than on a rule of
//! thumb:
//!
//! - OVMF (EDK2 `MdeModulePkg/Bus/Pci/PciBusDxe/PciOptionRomSupport.c`): `LoadOpRomImage` walks
//!   the ROM BAR from a 55AA at offset 0, `ProcessOpRomImage` starts every EFI driver of a
//!   supported machine type, `LocalLoadFile2` decompresses it ([`ovmf`]).
//! - SeaBIOS (`src/optionroms.c`): `map_pcirom` picks the first x86 image whose PCIR vendor and
//!   device equal the card's, `is_valid_rom` checks its checksum over the init size ([`seabios`]).
//!
//! Both work on the bytes as QEMU hands them to the guest with `romfile=`: unchanged, in a BAR
//! whose size is the file size rounded up to a power of two (the rest reads as zeros).

pub mod ovmf;
pub mod seabios;

use serde::Serialize;

use super::chain::Image;

pub use ovmf::OvmfView;
pub use seabios::SeabiosView;

/// The ids of the card a ROM is meant for (from sysfs with `--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Card {
    pub vendor_id: u16,
    pub device_id: u16,
    pub subsystem_vendor_id: Option<u16>,
    pub subsystem_device_id: Option<u16>,
    /// prog-if | subclass << 8 | base class << 16.
    pub class_code: u32,
}

impl Card {
    pub fn base_class(&self) -> u8 {
        (self.class_code >> 16) as u8
    }

    pub fn ids(&self) -> String {
        format!("{:04x}:{:04x}", self.vendor_id, self.device_id)
    }
}

/// `firmware_view` in `vfiotool.rom/1`.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareView {
    pub ovmf: OvmfView,
    pub seabios: SeabiosView,
}

/// The ROM as QEMU presents it: the file, then zeros up to the BAR size.
#[derive(Clone, Copy)]
pub(crate) struct Bar<'a> {
    pub bytes: &'a [u8],
    pub size: usize,
}

impl<'a> Bar<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Bar {
            bytes,
            size: bytes.len().checked_next_power_of_two().unwrap_or(bytes.len()),
        }
    }

    /// A byte of the BAR; past the file, zero; past the BAR, None.
    pub fn u8(&self, at: usize) -> Option<u8> {
        if at >= self.size {
            return None;
        }
        Some(self.bytes.get(at).copied().unwrap_or(0))
    }

    pub fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8(at)?, self.u8(at.checked_add(1)?)?]))
    }

    pub fn is_pcir(&self, at: usize) -> bool {
        (0..4).all(|i| at.checked_add(i).and_then(|a| self.u8(a)) == Some(b"PCIR"[i]))
    }

    /// The byte sum mod 256 of `len` bytes from `at` (zeros past the file).
    pub fn sum(&self, at: usize, len: usize) -> u8 {
        let end = at.saturating_add(len).min(self.bytes.len());
        self.bytes
            .get(at.min(end)..end)
            .unwrap_or_default()
            .iter()
            .fold(0u8, |a, b| a.wrapping_add(*b))
    }
}

/// The analysis image at `offset`, if the chain walk or the scan past it found one there.
pub(crate) fn image_at(images: &[Image], offset: usize) -> Option<&Image> {
    images.iter().find(|i| i.offset == offset)
}

pub fn class_name(base: u8) -> &'static str {
    match base {
        0x00 => "unclassified",
        0x01 => "storage",
        0x02 => "network",
        0x03 => "display",
        0x04 => "multimedia",
        0x0C => "serial bus",
        _ => "other",
    }
}

/// Build both views. `first` is the offset of the first image (the prefix length): when it is not
/// 0 neither firmware finds the ROM as given, and the images are judged as `rom patch` would leave
/// them.
pub fn view(bytes: &[u8], images: &[Image], first: usize, card: Option<&Card>) -> FirmwareView {
    FirmwareView {
        ovmf: ovmf::view(bytes, images, first, card),
        seabios: seabios::view(bytes, images, first, card),
    }
}
