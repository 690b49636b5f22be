//! The image chain: where the first image starts, the images firmware reaches by PCIR image
//! length up to the last-image flag, and valid images that lie beyond it (unreachable).
//!
//! Firmware (EDK2's PCI bus driver) starts at the ROM's first image, steps by the PCIR image
//! length, and stops at the image whose indicator has bit 7 set, at a missing 55AA, or at the
//! end of the ROM. Real ROMs carry images past that point, so the walk goes on with a
//! 512-byte-aligned scan and reports what it finds there as unreachable.

use serde::Serialize;

use super::efi::{self, EfiImage};
use super::pcir::{self, code_type_name, Npde, Pcir, BLOCK};
use super::reader::Reader;

/// More images than this in one ROM means the data is not a ROM; the walk stops there.
pub const MAX_IMAGES: usize = 64;

/// One image as reported in `vfiotool.rom/1`.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub index: usize,
    pub offset: usize,
    /// Image length from the PCIR record, in bytes.
    pub length: usize,
    /// Initialization size from header byte 2, in bytes.
    pub init_size: usize,
    pub code_type: u8,
    pub code_type_name: &'static str,
    pub vendor_id: u16,
    pub device_id: u16,
    pub class_code: u32,
    pub pcir_revision: u8,
    /// The PCIR 3.0 device list (other device ids the image claims), empty when absent. Neither
    /// firmware reads it: SeaBIOS compares only the PCIR device id, EDK2 no id at all.
    pub device_list: Vec<u16>,
    /// Offset of the PCIR record within the image (the u16 at 0x18).
    pub pcir_offset: usize,
    pub code_revision: u16,
    pub last: bool,
    /// Firmware walking the chain from the first image reaches this image.
    pub reachable: bool,
    /// The image's bytes (over its PCIR length) sum to 0 mod 256.
    pub checksum_ok: bool,
    /// The byte sum mod 256 (0 when the checksum is right).
    pub checksum: u8,
    /// The file ends before the image does.
    pub truncated: bool,
    pub npde: Option<Npde>,
    pub efi: Option<EfiImage>,
    pub problems: Vec<String>,
}

/// How the reachable chain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainEnd {
    /// An image with the last-image flag.
    LastFlag,
    /// The next image would start at or past the end of the file, and no image was flagged last.
    EndOfFile,
    /// An image runs past the end of the file.
    Truncated,
    /// The next image offset holds no valid image.
    Broken,
    /// The image count bound was hit.
    TooManyImages,
}

/// The first valid image: the cut point for `rom patch`.
///
/// Scans 512-byte-aligned offsets for 55AA with a valid PCIR. When the file starts with an
/// NVIDIA `NVGI` header, only an image with vendor 10de counts, so a stray 55AA in the header
/// cannot be taken for the ROM. Returns the offset and PCIR, or the reason the first 55AA seen
/// was not an image.
pub fn find_first(rom: &Reader<'_>, require_vendor: Option<u16>) -> Result<(usize, Pcir), Option<String>> {
    let mut first_reason = None;
    for offset in (0..rom.len()).step_by(BLOCK) {
        match pcir::probe(rom, offset) {
            Ok(p) if require_vendor.is_none_or(|v| v == p.vendor_id) => return Ok((offset, p)),
            Ok(p) => {
                first_reason.get_or_insert_with(|| {
                    format!(
                        "image at {offset:#x} has vendor {:04x}, not {:04x} as the header requires",
                        p.vendor_id,
                        require_vendor.unwrap_or_default()
                    )
                });
            }
            Err(pcir::NotAnImage::NoSignature) => {}
            Err(e) => {
                first_reason.get_or_insert_with(|| e.describe(offset));
            }
        }
    }
    Err(first_reason)
}

/// Build the report of the image at `offset`.
fn image(rom: &Reader<'_>, earlier: &[Image], offset: usize, pcir: Pcir, reachable: bool) -> Image {
    let index = earlier.len();
    let bytes = rom.clamped(offset, pcir.image_length);
    let truncated = bytes.len() < pcir.image_length;
    let checksum = bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    let init_size = usize::from(rom.u8("init_size", offset + 2).unwrap_or(0)) * BLOCK;
    let npde = pcir::npde(rom, offset, &pcir);
    let device_list = pcir::device_list(rom, offset, &pcir).unwrap_or_default();
    let mut problems = Vec::new();
    if pcir.length < 0x18 {
        problems.push(format!(
            "PCIR.length at {:#x} is {:#x}, shorter than the 0x18-byte record",
            offset + pcir.offset + 0x0A,
            pcir.length
        ));
    }
    if truncated {
        problems.push(format!(
            "image runs to {:#x} (PCIR.image_length {:#x}) but the file ends at {:#x}",
            offset + pcir.image_length,
            pcir.image_length,
            rom.len()
        ));
    }
    let efi = (pcir.code_type == 0x03).then(|| {
        // Dumps of recent NVIDIA cards carry a second, byte-identical copy of the EFI image past
        // the last-image flag: its analysis is the first copy's, and decompressing the driver
        // again doubled the time `rom parse` takes on them.
        let same = earlier
            .iter()
            .find(|e| e.efi.is_some() && e.npde == npde && rom.clamped(e.offset, e.length) == bytes);
        match same.and_then(|e| e.efi.clone()) {
            Some(copy) => copy,
            None => efi::analyse(bytes, &pcir, npde.as_ref()),
        }
    });
    if let Some(e) = &efi {
        problems.extend(e.decompress_error.iter().cloned());
        problems.extend(e.problems.iter().cloned());
    }
    Image {
        index,
        offset,
        length: pcir.image_length,
        init_size,
        code_type: pcir.code_type,
        code_type_name: code_type_name(pcir.code_type),
        vendor_id: pcir.vendor_id,
        device_id: pcir.device_id,
        class_code: pcir.class_code,
        pcir_revision: pcir.revision,
        device_list,
        pcir_offset: pcir.offset,
        code_revision: pcir.code_revision,
        last: pcir.last(),
        reachable,
        checksum_ok: checksum == 0 && !truncated,
        checksum,
        truncated,
        npde,
        efi,
        problems,
    }
}

/// Walk the chain from `first` and then scan past its end. Returns every image found and how the
/// reachable part ended.
pub fn walk(rom: &Reader<'_>, first: usize) -> (Vec<Image>, ChainEnd, Vec<String>) {
    let mut images = Vec::new();
    let mut notes = Vec::new();
    let mut offset = first;
    let end;
    loop {
        if images.len() >= MAX_IMAGES {
            end = ChainEnd::TooManyImages;
            notes.push(format!("stopped after {MAX_IMAGES} images"));
            break;
        }
        let p = match pcir::probe(rom, offset) {
            Ok(p) => p,
            Err(e) => {
                notes.push(format!("chain broken: {}", e.describe(offset)));
                end = ChainEnd::Broken;
                break;
            }
        };
        let next = offset.saturating_add(p.image_length);
        let img = image(rom, &images, offset, p, true);
        let (last, truncated) = (img.last, img.truncated);
        images.push(img);
        offset = next;
        if truncated {
            end = ChainEnd::Truncated;
            break;
        }
        if last {
            end = ChainEnd::LastFlag;
            break;
        }
        if offset >= rom.len() {
            notes.push(format!(
                "image {} is not flagged last, but the file ends at {:#x}",
                images.len() - 1,
                rom.len()
            ));
            end = ChainEnd::EndOfFile;
            break;
        }
    }
    scan_unreachable(rom, offset, &mut images);
    (images, end, notes)
}

/// Valid images past the reachable chain, found on 512-byte boundaries and walked by length.
fn scan_unreachable(rom: &Reader<'_>, from: usize, images: &mut Vec<Image>) {
    let mut offset = from.div_ceil(BLOCK).saturating_mul(BLOCK);
    while offset < rom.len() && images.len() < MAX_IMAGES {
        match pcir::probe(rom, offset) {
            Ok(p) => {
                let length = p.image_length;
                let img = image(rom, images, offset, p, false);
                images.push(img);
                offset = offset.saturating_add(length);
            }
            Err(_) => offset += BLOCK,
        }
    }
}
