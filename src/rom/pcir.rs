//! The records that describe one image: the 55AA header, the PCI Data Structure ("PCIR") and
//! NVIDIA's NPDE extension.

use serde::Serialize;

use super::reader::Reader;

/// The size of the image-length unit and of the alignment images start on.
pub const BLOCK: usize = 512;

/// Code types named by the PCI firmware spec and NVIDIA.
pub fn code_type_name(code_type: u8) -> &'static str {
    match code_type {
        0x00 => "x86",
        0x01 => "open_firmware",
        0x02 => "pa_risc",
        0x03 => "efi",
        0x70 | 0xE0 => "nvidia_fw",
        _ => "unknown",
    }
}

/// The fields of a PCIR record that the chain walk and the report use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pcir {
    /// Offset of the PCIR record relative to the image start (the u16 at 0x18).
    pub offset: usize,
    pub vendor_id: u16,
    pub device_id: u16,
    /// The PCIR record's own length field (+0x0A).
    pub length: u16,
    pub revision: u8,
    /// prog-if | subclass << 8 | base class << 16.
    pub class_code: u32,
    /// The image length in bytes (+0x10, in 512-byte units).
    pub image_length: usize,
    pub code_revision: u16,
    pub code_type: u8,
    pub indicator: u8,
    /// The PCIR 3.0 device-list pointer (+0x08), relative to the PCIR record; 0 when none.
    pub device_list_pointer: u16,
}

/// A bound on the PCIR 3.0 device list: more ids than this means the list is garbage.
pub const MAX_DEVICE_LIST: usize = 64;

/// The PCIR 3.0 device list: u16 device ids from PCIR + pointer, ended by 0. Only PCIR revision
/// 3 defines the pointer; neither EDK2 nor SeaBIOS reads the list (they are reported, not used
/// for matching). Returns None when there is no list or it leaves the data without an end.
pub fn device_list(rom: &Reader<'_>, image_offset: usize, pcir: &Pcir) -> Option<Vec<u16>> {
    if pcir.revision < 3 || pcir.device_list_pointer == 0 {
        return None;
    }
    let start = image_offset
        .checked_add(pcir.offset)?
        .checked_add(usize::from(pcir.device_list_pointer))?;
    let mut ids = Vec::new();
    for i in 0..MAX_DEVICE_LIST {
        let id = rom.u16("PCIR.device_list", start + 2 * i).ok()?;
        if id == 0 {
            return Some(ids);
        }
        ids.push(id);
    }
    None
}

impl Pcir {
    pub fn last(&self) -> bool {
        self.indicator & 0x80 != 0
    }

    pub fn base_class(&self) -> u8 {
        (self.class_code >> 16) as u8
    }
}

/// Why an offset does not hold a valid image (kept for the error a user sees when a file
/// has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAnImage {
    NoSignature,
    /// 55AA is there, but the PCIR pointer leaves the file.
    PcirPointerOutside {
        pointer: u16,
    },
    /// The pointer lands on something that is not "PCIR".
    PcirSignature {
        pointer: u16,
        found: [u8; 4],
    },
    /// The PCIR record is cut by the end of the file.
    PcirTruncated {
        pointer: u16,
    },
    /// A PCIR whose image length is 0 cannot be walked.
    ZeroImageLength {
        pointer: u16,
    },
}

impl NotAnImage {
    pub fn describe(&self, image_offset: usize) -> String {
        let pcir_at = |p: &u16| image_offset + *p as usize;
        match self {
            NotAnImage::NoSignature => format!("no 55AA signature at {image_offset:#x}"),
            NotAnImage::PcirPointerOutside { pointer } => format!(
                "image at {image_offset:#x}: PCIR pointer (u16 at {:#x}) = {pointer:#x} points past the end of the file",
                image_offset + 0x18
            ),
            NotAnImage::PcirSignature { pointer, found } => format!(
                "image at {image_offset:#x}: no \"PCIR\" at {:#x} (PCIR pointer {pointer:#x}), found {}",
                pcir_at(pointer),
                printable(found)
            ),
            NotAnImage::PcirTruncated { pointer } => format!(
                "image at {image_offset:#x}: PCIR record at {:#x} is cut by the end of the file",
                pcir_at(pointer)
            ),
            NotAnImage::ZeroImageLength { pointer } => format!(
                "image at {image_offset:#x}: PCIR.image_length at {:#x} is 0",
                pcir_at(pointer) + 0x10
            ),
        }
    }
}

/// Bytes shown as text when printable, else as hex, for error messages.
pub fn printable(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Probe `offset` for an image: 55AA, a PCIR record inside the data, and a non-zero image
/// length. Only the header fields are required to be present; the image itself may be
/// truncated by the end of the data (the caller reports that).
pub fn probe(rom: &Reader<'_>, offset: usize) -> Result<Pcir, NotAnImage> {
    match rom.bytes("signature", offset, 2) {
        Ok([0x55, 0xAA]) => {}
        _ => return Err(NotAnImage::NoSignature),
    }
    let pointer = rom
        .u16("PCIR pointer", offset + 0x18)
        .map_err(|_| NotAnImage::PcirPointerOutside { pointer: 0xFFFF })?;
    let at = offset + pointer as usize;
    let sig = rom
        .bytes("PCIR.signature", at, 4)
        .map_err(|_| NotAnImage::PcirPointerOutside { pointer })?;
    if sig != b"PCIR" {
        let mut found = [0u8; 4];
        found.copy_from_slice(sig);
        return Err(NotAnImage::PcirSignature { pointer, found });
    }
    let cut = |_| NotAnImage::PcirTruncated { pointer };
    let vendor_id = rom.u16("PCIR.vendor_id", at + 0x04).map_err(cut)?;
    let device_id = rom.u16("PCIR.device_id", at + 0x06).map_err(cut)?;
    let device_list_pointer = rom.u16("PCIR.device_list_pointer", at + 0x08).map_err(cut)?;
    let length = rom.u16("PCIR.length", at + 0x0A).map_err(cut)?;
    let revision = rom.u8("PCIR.revision", at + 0x0C).map_err(cut)?;
    let class = rom.bytes("PCIR.class_code", at + 0x0D, 3).map_err(cut)?;
    let class_code = u32::from(class[0]) | u32::from(class[1]) << 8 | u32::from(class[2]) << 16;
    let image_units = rom.u16("PCIR.image_length", at + 0x10).map_err(cut)?;
    let code_revision = rom.u16("PCIR.code_revision", at + 0x12).map_err(cut)?;
    let code_type = rom.u8("PCIR.code_type", at + 0x14).map_err(cut)?;
    let indicator = rom.u8("PCIR.indicator", at + 0x15).map_err(cut)?;
    if image_units == 0 {
        return Err(NotAnImage::ZeroImageLength { pointer });
    }
    Ok(Pcir {
        offset: pointer as usize,
        vendor_id,
        device_id,
        length,
        revision,
        class_code,
        image_length: usize::from(image_units) * BLOCK,
        code_revision,
        code_type,
        indicator,
        device_list_pointer,
    })
}

/// NVIDIA's NPDE record, 16-byte aligned after the PCIR record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Npde {
    /// Offset relative to the image start.
    pub offset: usize,
    pub revision: u16,
    pub length: u16,
    /// The sub-image length in bytes (u16 at +0x08, in 512-byte units).
    pub subimage_length: usize,
    pub last: bool,
    /// The u32 at +0x0C, present when the record is long enough: the UEFI driver version on
    /// NVIDIA EFI images (nvflash shows it as "UEFI Version 0x5000B").
    pub version: Option<u32>,
}

pub fn npde(rom: &Reader<'_>, image_offset: usize, pcir: &Pcir) -> Option<Npde> {
    let after = pcir.offset.checked_add(usize::from(pcir.length.max(0x18)))?;
    let rel = after.checked_add(15)? & !15;
    let at = image_offset.checked_add(rel)?;
    if rom.bytes("NPDE.signature", at, 4).ok()? != b"NPDE" {
        return None;
    }
    let revision = rom.u16("NPDE.revision", at + 4).ok()?;
    let length = rom.u16("NPDE.length", at + 6).ok()?;
    let subimage_length = usize::from(rom.u16("NPDE.subimage_length", at + 8).ok()?) * BLOCK;
    let last = rom.u8("NPDE.last", at + 0x0A).ok()? & 0x80 != 0;
    let version = if length >= 0x10 {
        rom.u32("NPDE.version", at + 0x0C).ok()
    } else {
        None
    };
    Some(Npde {
        offset: rel,
        revision,
        length,
        subimage_length,
        last,
        version,
    })
}
