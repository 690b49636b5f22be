//! EFI images (PCIR code type 3): the EFI image header, the driver payload (decompressed when
//! EFI-compressed), its PE headers, and whether it is a GOP driver.

use std::borrow::Cow;

use serde::Serialize;

use super::decompress;
use super::gop;
use super::pcir::{Npde, Pcir};
use super::pe::{self, PeInfo};
use super::reader::{OutOfBounds, Reader};

pub const EFI_SIGNATURE: u32 = 0x0EF1;
pub const MACHINE_X64: u16 = 0x8664;
pub const MACHINE_EBC: u16 = 0x0EBC;

/// No option ROM driver comes near this: the ROM BAR is at most 16 MiB.
pub const MAX_DRIVER_SIZE: usize = 64 << 20;

pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        0x014C => "ia32",
        0x0200 => "ia64",
        MACHINE_EBC => "ebc",
        MACHINE_X64 => "x64",
        0xAA64 => "aarch64",
        0x01C2 => "arm",
        0x5064 => "riscv64",
        0x6264 => "loongarch64",
        _ => "unknown",
    }
}

pub fn subsystem_name(subsystem: u16) -> &'static str {
    match subsystem {
        10 => "application",
        11 => "boot_service_driver",
        12 => "runtime_driver",
        _ => "unknown",
    }
}

/// What one EFI image holds. Serialized as the `efi` object of an image in `vfiotool.rom/1`.
#[derive(Debug, Clone, Serialize)]
pub struct EfiImage {
    pub signature_ok: bool,
    pub subsystem: u16,
    pub subsystem_name: &'static str,
    pub machine: u16,
    pub machine_name: &'static str,
    pub compression_type: u16,
    pub compressed: bool,
    /// Offset of the driver payload within the image (header +0x16).
    pub pe_offset: u16,
    /// Size of the driver after decompression (or as stored).
    pub driver_size: Option<usize>,
    pub decompress_error: Option<String>,
    pub pe_ok: bool,
    pub pe: Option<PeInfo>,
    /// Disagreements and header problems, one line each.
    pub problems: Vec<String>,
    /// A GOP driver: names the GOP protocol and provides it, judged with the ROM it sits in.
    pub gop: bool,
    pub gop_guid: bool,
    pub uga_guid: bool,
    /// The GOP driver version: AMD's version string, or NVIDIA's NPDE version ("0x5000B").
    pub gop_version: Option<String>,
    pub version_string: Option<String>,
}

/// Why the driver of an EFI image could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// A header field lies past the end of the image.
    #[error(transparent)]
    Cut(#[from] OutOfBounds),
    #[error("EFI.pe_offset at 0x16 is {pe_offset:#x}, past the end of the image data ({end:#x})")]
    PeOffsetPastEnd { pe_offset: usize, end: usize },
    /// `offset` is in the image (the decoder's stream offset plus `pe_offset`).
    #[error("EFI decompression failed: {what} at image offset {offset:#x}")]
    Decompress { what: String, offset: usize },
    #[error("EFI.compression_type at 0x0c is {0}, not 0 (none) or 1 (EFI)")]
    CompressionType(u16),
}

/// The driver bytes of an EFI image: borrowed from the image when stored uncompressed (no copy:
/// `rom parse` reads every driver, and copying them was a visible part of its run time),
/// decompressed otherwise.
pub fn driver_bytes(image: &[u8]) -> Result<Cow<'_, [u8]>, DriverError> {
    let r = Reader::new(image);
    let compression = r.u16("EFI.compression_type", 0x0C)?;
    let pe_offset = usize::from(r.u16("EFI.pe_offset", 0x16)?);
    let init_size = usize::from(r.u16("EFI.init_size", 0x02)?) * 512;
    let end = init_size.min(image.len());
    let payload = image
        .get(pe_offset..end)
        .ok_or(DriverError::PeOffsetPastEnd { pe_offset, end })?;
    match compression {
        0 => Ok(Cow::Borrowed(payload)),
        1 => decompress::decompress(payload, MAX_DRIVER_SIZE)
            .map(Cow::Owned)
            .map_err(|e| DriverError::Decompress {
                what: e.what,
                offset: pe_offset + e.offset,
            }),
        other => Err(DriverError::CompressionType(other)),
    }
}

/// Analyse the EFI image whose bytes (as far as the file holds them) are `image`.
pub fn analyse(image: &[u8], _pcir: &Pcir, npde: Option<&Npde>) -> EfiImage {
    let r = Reader::new(image);
    let signature = r.u32("EFI.signature", 0x04).unwrap_or(0);
    let subsystem = r.u16("EFI.subsystem", 0x08).unwrap_or(0);
    let machine = r.u16("EFI.machine", 0x0A).unwrap_or(0);
    let compression_type = r.u16("EFI.compression_type", 0x0C).unwrap_or(0);
    let pe_offset = r.u16("EFI.pe_offset", 0x16).unwrap_or(0);
    let mut problems = Vec::new();
    if signature != EFI_SIGNATURE {
        problems.push(format!("EFI.signature at 0x04 is {signature:#x}, not 0xef1"));
    }

    let (driver, decompress_error) = match driver_bytes(image) {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut pe = None;
    if let Some(d) = &driver {
        match pe::parse(d) {
            Ok(info) => {
                if info.machine != machine {
                    problems.push(format!(
                        "PE machine {:#x} ({}) differs from the EFI header's {machine:#x} ({})",
                        info.machine,
                        machine_name(info.machine),
                        machine_name(machine)
                    ));
                }
                if info.subsystem != subsystem {
                    problems.push(format!(
                        "PE subsystem {} differs from the EFI header's {subsystem}",
                        info.subsystem
                    ));
                }
                pe = Some(info);
            }
            Err(e) => problems.push(format!("PE headers: {e}")),
        }
    }
    let pe_ok = pe.is_some() && problems.is_empty();
    let driver_slice = driver.as_deref().unwrap_or_default();
    let gop_guid = gop::contains(driver_slice, &gop::GOP_GUID);
    let uga_guid = gop::contains(driver_slice, &gop::UGA_GUID);
    // Provisional: `rom::analyze` settles it with the ROM the image sits in (an Ampere EFI image
    // has class 0 in a display ROM; iPXE names GOP in a network ROM).
    let gop = gop_guid;
    // NVIDIA keeps the version in the NPDE record (what nvflash shows as "UEFI Version");
    // others (AMD) print it into the driver as a string.
    // NPDE is NVIDIA's alone; Ampere and later may leave the EFI image's PCIR vendor zero.
    let npde_version = npde.and_then(|n| n.version).map(|v| format!("0x{v:X}"));
    let version_string = gop.then(|| gop::amd_version_string(driver_slice)).flatten();
    let gop_version = match (&npde_version, &version_string) {
        _ if !gop => None,
        (Some(v), _) => Some(v.clone()),
        (None, Some((_, v))) => Some(v.clone()),
        (None, None) => None,
    };
    let version_string = version_string.map(|(text, _)| text);
    EfiImage {
        signature_ok: signature == EFI_SIGNATURE,
        subsystem,
        subsystem_name: subsystem_name(subsystem),
        machine,
        machine_name: machine_name(machine),
        compression_type,
        compressed: compression_type == 1,
        pe_offset,
        driver_size: driver.as_ref().map(|d| d.len()),
        decompress_error,
        pe_ok,
        pe,
        problems,
        gop,
        gop_guid,
        uga_guid,
        gop_version,
        version_string,
    }
}
