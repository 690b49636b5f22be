//! OVMF (EDK2 PciBusDxe) on a ROM.
//!
//! `LoadOpRomImage`: the ROM must hold 55AA at offset 0, or nothing is loaded. From there the
//! walk steps by PCIR image length; a position without 55AA is skipped 512 bytes at a time; the
//! walk stops at a PCIR pointer that is 0, not DWORD-aligned or outside the ROM, at a missing
//! "PCIR", at an image that would run past the ROM size, at the last-image flag, or at the ROM
//! size. `ProcessOpRomImage` then starts each EFI image (code type 3) of a supported machine type
//! (X64 OVMF: x64 natively, EBC through its interpreter; IA32, AArch64 and others are skipped)
//! that is not an EFI application (current EDK2 no longer reads the ROM header's machine type:
//! `LoadImage` decides by the PE header's; checked in QEMU, see tests/firmware_qemu.rs).
//! `LocalLoadFile2` requires the 0x0EF1 signature, a driver
//! subsystem, compression type 0 or 1, an init size within the image and the PE offset inside it,
//! and fails on a stream that does not decompress; `LoadImage` fails on PE headers it cannot read.
//! It never reads the EFI image's PCIR vendor, device or class.
//!
//! Whether a loaded driver gives a display is judged by what it is and by the ROM it sits in: a
//! driver naming the GOP protocol in a display ROM (or for a display card) is a GOP driver; the
//! same GUID in a network ROM is a driver that only draws through GOP (iPXE).

use serde::Serialize;

use super::{class_name, image_at, Bar, Card};
use crate::rom::chain::{Image, MAX_IMAGES};
use crate::rom::efi::{machine_name, MACHINE_EBC, MACHINE_X64};
use crate::rom::pcir::BLOCK;

/// What OVMF does with one EFI image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Loaded and started.
    Loaded,
    /// `ProcessOpRomImage` passes over it (machine type, application).
    Skipped,
    /// `LoadImage` is tried and fails (header, decompression, PE).
    LoadFails,
    /// The walk never reaches it (after the last-image flag, past a break).
    NotReached,
}

/// What a loaded driver does for the display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GopRole {
    /// Installs the Graphics Output Protocol: pre-boot display.
    Provides,
    /// Names GOP only to use it (network drivers such as iPXE).
    UsesOnly,
    /// No GOP protocol GUID in the driver.
    None,
    /// The driver could not be read.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct OvmfImage {
    pub image: Option<usize>,
    pub offset: usize,
    pub outcome: Outcome,
    pub gop: GopRole,
    /// Why, in the firmware's terms.
    pub reason: String,
}

/// `firmware_view.ovmf`.
#[derive(Debug, Clone, Serialize)]
pub struct OvmfView {
    /// OVMF finds 55AA at offset 0 of the file as given.
    pub rom_accepted: bool,
    /// The file has bytes before its first image: the images below are judged as `rom patch`
    /// leaves them (starting at offset 0); as given, OVMF loads nothing.
    pub judged_after_cut: bool,
    /// Indexes of the images the walk reaches, in order.
    pub walked: Vec<Option<usize>>,
    /// How the walk ended.
    pub walk_end: String,
    pub efi_images: Vec<OvmfImage>,
    /// Indexes of the EFI drivers OVMF loads and starts.
    pub loaded: Vec<usize>,
    /// The first loaded driver that provides GOP.
    pub gop_driver: Option<usize>,
    /// OVMF shows pre-boot output from this ROM (as given, or after the cut when judged so).
    pub display: bool,
}

/// Offsets (relative to the BAR) of the images LoadOpRomImage's walk copies, and why it stopped.
/// `base` is where the BAR starts in the file (for the messages only).
fn walk(bar: &Bar<'_>, base: usize) -> (Vec<usize>, String) {
    let at = |o: usize| o + base;
    let mut found = Vec::new();
    if bar.u16(0) != Some(0xAA55) {
        return (found, "no 55AA at offset 0: the ROM is not loaded".into());
    }
    let mut offset = 0usize;
    // Every step advances at least 512 bytes, so this bounds the loop by the BAR size.
    for _ in 0..=bar.size / BLOCK {
        if offset >= bar.size {
            return (found, format!("end of the ROM ({:#x} bytes)", bar.size));
        }
        if bar.u16(offset) != Some(0xAA55) {
            offset += BLOCK;
            continue;
        }
        let ptr = usize::from(bar.u16(offset + 0x18).unwrap_or(0));
        if ptr == 0 || ptr & 3 != 0 || offset + ptr + 0x18 > bar.size {
            return (
                found,
                format!(
                    "image at {offset:#x}: PCIR pointer {ptr:#x} is 0, not DWORD-aligned or outside the ROM"
                ),
            );
        }
        if !bar.is_pcir(offset + ptr) {
            return (
                found,
                format!(
                    "image at {:#x}: no \"PCIR\" at {:#x}",
                    at(offset),
                    at(offset + ptr)
                ),
            );
        }
        let length = usize::from(bar.u16(offset + ptr + 0x10).unwrap_or(0)) * BLOCK;
        if offset + length > bar.size {
            return (
                found,
                format!(
                    "image at {offset:#x} ({length:#x} bytes) would run past the ROM size {:#x}",
                    bar.size
                ),
            );
        }
        found.push(offset);
        if found.len() > MAX_IMAGES {
            return (found, format!("more than {MAX_IMAGES} images"));
        }
        if bar.u8(offset + ptr + 0x15).unwrap_or(0) & 0x80 != 0 {
            return (
                found,
                format!("last-image flag on the image at {:#x}", at(offset)),
            );
        }
        if length == 0 {
            return (
                found,
                format!(
                    "image at {:#x} has PCIR image length 0: EDK2's walk would not advance",
                    at(offset)
                ),
            );
        }
        offset += length;
    }
    (found, "end of the ROM".into())
}

fn supported(machine: u16) -> bool {
    machine == MACHINE_X64 || machine == MACHINE_EBC
}

/// The load decision for one EFI image that the walk reaches.
fn load(bar: &Bar<'_>, at: usize, img: &Image) -> (Outcome, String) {
    let Some(efi) = &img.efi else {
        return (Outcome::LoadFails, "no EFI header".into());
    };
    if efi.subsystem == 10 {
        return (
            Outcome::Skipped,
            "an EFI application: the PCI bus driver never starts applications from a ROM".into(),
        );
    }
    if !efi.signature_ok {
        return (
            Outcome::LoadFails,
            "no 0x0EF1 signature at +0x04: LoadFile2 finds no EFI image".into(),
        );
    }
    if efi.subsystem != 11 && efi.subsystem != 12 {
        return (
            Outcome::LoadFails,
            format!(
                "subsystem {} is not a boot-service or runtime driver: LoadFile2 refuses it",
                efi.subsystem
            ),
        );
    }
    if efi.compression_type > 1 {
        return (
            Outcome::LoadFails,
            format!(
                "compression type {} is neither 0 nor 1: LoadFile2 refuses it",
                efi.compression_type
            ),
        );
    }
    let init = usize::from(bar.u16(at + 2).unwrap_or(0)) * BLOCK;
    if init > img.length || usize::from(efi.pe_offset) >= init {
        return (
            Outcome::LoadFails,
            format!(
                "init size {init:#x} exceeds the image length {:#x} or the PE offset {:#x} is past it: LoadFile2 refuses it",
                img.length, efi.pe_offset
            ),
        );
    }
    if let Some(e) = &efi.decompress_error {
        return (
            Outcome::LoadFails,
            format!("{e}: LoadFile2 returns a device error"),
        );
    }
    match &efi.pe {
        None => (
            Outcome::LoadFails,
            "PE headers unreadable: LoadImage fails".into(),
        ),
        Some(pe) if !supported(pe.machine) => (
            Outcome::LoadFails,
            format!(
                "the PE says machine {:#x} ({}): LoadImage fails",
                pe.machine,
                machine_name(pe.machine)
            ),
        ),
        Some(_) => (
            Outcome::Loaded,
            format!(
                "{} {}driver: loaded and started",
                efi.machine_name,
                if efi.compressed { "compressed " } else { "" }
            ),
        ),
    }
}

/// Whether a loaded driver provides GOP, judged with the ROM it sits in (`rom_class`: the first
/// image's class) or the card it is for.
pub fn gop_role(img: &Image, rom_class: u32, card: Option<&Card>) -> (GopRole, String) {
    let Some(efi) = &img.efi else {
        return (GopRole::Unknown, String::new());
    };
    if efi.driver_size.is_none() {
        return (GopRole::Unknown, "the driver could not be read".into());
    }
    if !efi.gop_guid {
        let why = if efi.uga_guid {
            "installs no GOP: a UGA-only (Apple) driver, no display under OVMF"
        } else {
            "installs no GOP: the driver never names the GOP protocol"
        };
        return (GopRole::None, why.into());
    }
    let own = (img.class_code >> 16) as u8;
    let rom = (rom_class >> 16) as u8;
    if let Some(c) = card {
        return if c.base_class() == 0x03 {
            (
                GopRole::Provides,
                format!(
                    "names GOP and the card is a display controller (class {:06x})",
                    c.class_code
                ),
            )
        } else {
            (
                GopRole::UsesOnly,
                format!(
                    "names GOP, but the card is a {} device (class {:06x}): such drivers draw through GOP, they do not provide it",
                    class_name(c.base_class()),
                    c.class_code
                ),
            )
        };
    }
    if own == 0x03 {
        return (
            GopRole::Provides,
            "names GOP and its PCIR class is display".into(),
        );
    }
    if rom == 0x03 {
        return (
            GopRole::Provides,
            format!(
                "names GOP; its PCIR class is {:06x} (NVIDIA Ampere and later leave it so, EDK2 never reads it) and the ROM's first image is display class",
                img.class_code
            ),
        );
    }
    (
        GopRole::UsesOnly,
        format!(
            "names GOP, but this is a {} ROM (first image class {rom_class:06x}): drivers such as iPXE draw through GOP, they do not provide it",
            class_name(rom)
        ),
    )
}

pub fn view(bytes: &[u8], images: &[Image], first: usize, card: Option<&Card>) -> OvmfView {
    let bar = Bar::new(bytes.get(first..).unwrap_or_default());
    let (offsets, walk_end) = walk(&bar, first);
    let walked: Vec<Option<usize>> = offsets
        .iter()
        .map(|o| image_at(images, o + first).map(|i| i.index))
        .collect();
    let rom_class = offsets
        .first()
        .and_then(|o| image_at(images, o + first))
        .map(|i| i.class_code)
        .unwrap_or(0);
    let mut efi_images = Vec::new();
    let mut loaded = Vec::new();
    let mut gop_driver = None;
    for img in images.iter().filter(|i| i.code_type == 0x03) {
        let Some(rel) = img.offset.checked_sub(first) else {
            continue;
        };
        let (outcome, mut reason) = if offsets.contains(&rel) {
            load(&bar, rel, img)
        } else {
            (
                Outcome::NotReached,
                format!("its walk stops before it ({walk_end})"),
            )
        };
        let (gop, why) = gop_role(img, rom_class, card);
        if !why.is_empty() {
            reason = format!("{reason}; {why}");
        }
        if outcome == Outcome::Loaded {
            loaded.push(img.index);
            if gop == GopRole::Provides && gop_driver.is_none() {
                gop_driver = Some(img.index);
            }
        }
        efi_images.push(OvmfImage {
            image: Some(img.index),
            offset: img.offset,
            outcome,
            gop,
            reason,
        });
    }
    OvmfView {
        rom_accepted: first == 0 && !offsets.is_empty(),
        judged_after_cut: first != 0,
        walked,
        walk_end,
        efi_images,
        loaded,
        gop_driver,
        display: gop_driver.is_some(),
    }
}
