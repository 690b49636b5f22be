//! `rom build`: put a ROM together from a base ROM, option ROM images and EFI drivers, the way
//! EDK2's `EfiRom` lays out an EFI image (modelled on its BaseTools source, written anew), and
//! check the result with the same analysis `rom parse` uses before anything is written.
//!
//! Layout of an EFI image made from a PE driver: the 0x1A-byte EFI ROM header padded to 0x1C,
//! a PCI 3.0 data structure (0x1C bytes, revision 3) at 0x1C, then the driver and 0xFF padding to
//! a 512-byte boundary. As EfiRom does, a compressed stream starts right after the headers
//! ([`HEADER_END`]) with the padding after it, while an uncompressed driver gets the padding
//! before it, so that it ends exactly at the end of the image: firmware and `rom parse` take an
//! uncompressed driver to run to the image's end, and the padding would otherwise be read as
//! part of the PE file. Machine and
//! subsystem come from the PE headers; vendor, device and class from the request, the base ROM
//! or the first image given. Across the whole chain: only the last image has the last-image flag
//! (in its PCIR, and in its NPDE record on NVIDIA images), and every x86 image sums to 0.

use serde::Serialize;

use super::compress::{compress, CompressError};
use super::decompress::decompress;
use super::efi::{self, MACHINE_X64};
use super::pcir::{self, BLOCK};
use super::reader::Reader;
use super::{analyze, gop, pe, ChainEnd, RomAnalysis, RomError};

/// The schema name of `rom build --json`.
pub const SCHEMA: &str = "vfiotool.rom-build/1";
/// Where the EFI ROM header and PCIR record end in an EFI image we build.
pub const HEADER_END: usize = 0x38;
const PCIR_OFFSET: usize = 0x1C;
const PCIR_LEN: u16 = 0x1C;
/// The PCI ROM BAR is at most 16 MiB; a bigger ROM cannot be exposed to a guest.
pub const MAX_ROM: usize = 16 << 20;

/// The machines an option ROM's EFI driver can be for (firmware loads those it supports).
const MACHINES: [u16; 7] = [0x014C, 0x8664, 0x0EBC, 0xAA64, 0x01C2, 0x5064, 0x6264];

/// What one part of the request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// An image of the base ROM.
    Base,
    /// A legacy x86 option ROM image (code type 0).
    X86,
    /// An option ROM image of any type, taken as it is.
    Image,
    /// A PE driver, wrapped into a new EFI image.
    Efi,
}

/// One input: its kind, the name used in messages, its bytes.
#[derive(Debug, Clone)]
pub struct Part {
    pub kind: PartKind,
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Part {
    pub fn new(kind: PartKind, name: impl Into<String>, bytes: Vec<u8>) -> Self {
        Part {
            kind,
            name: name.into(),
            bytes,
        }
    }
}

/// Everything `rom build` needs.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The base ROM's bytes and name: its reachable images come first.
    pub base: Option<(String, Vec<u8>)>,
    pub parts: Vec<Part>,
    pub vendor: Option<u16>,
    pub device: Option<u16>,
    pub class: Option<u32>,
    pub compress: bool,
    /// The firmware verdict the result must have; derived from the parts when not given.
    pub expect: Option<String>,
}

/// One image of the result, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    pub index: usize,
    pub source: PartKind,
    pub from: String,
    pub offset: usize,
    pub length: usize,
    pub code_type: u8,
    pub vendor_id: u16,
    pub device_id: u16,
    pub class_code: u32,
    pub last: bool,
    /// An x86 image whose checksum byte (its last byte) was changed.
    pub checksum_fixed: bool,
    /// For images built from a PE: machine, subsystem, sizes.
    pub machine: Option<u16>,
    pub subsystem: Option<u16>,
    pub compressed: Option<bool>,
    pub driver_size: Option<usize>,
    pub payload_size: Option<usize>,
}

/// The result, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Built {
    pub images: Vec<BuiltImage>,
    /// Bytes of the base ROM that were not taken: a dump header before its first image,
    /// images after its last-image flag, padding.
    pub base_dropped_bytes: usize,
    pub expected_firmware: String,
    pub size: usize,
    #[serde(skip)]
    pub output: Vec<u8>,
    #[serde(skip)]
    pub analysis: RomAnalysis,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("nothing to build: give --base, --x86, --image or --efi")]
    Empty,
    #[error("{name}: base ROM: {err}")]
    Base { name: String, err: RomError },
    #[error("{name}: base ROM: {why}")]
    BaseChain { name: String, why: String },
    #[error("{name}: not an option ROM image: {why}")]
    NotAnImage { name: String, why: String },
    #[error("{name}: PCIR.code_type is {code_type:#04x}, not 0 (x86); pass it with --image")]
    NotX86 { name: String, code_type: u8 },
    #[error("{name}: image length {length:#x} (PCIR.image_length) but the file has {size:#x} bytes")]
    ShortImage {
        name: String,
        length: usize,
        size: usize,
    },
    #[error("{name}: not a PE driver: no MZ signature at 0x0 (a TE image or raw data cannot go into an option ROM)")]
    NotMz { name: String },
    #[error("{name}: not a PE driver: {why}")]
    NotPe { name: String, why: pe::PeError },
    #[error("{name}: PE subsystem {subsystem} ({}): an option ROM holds EFI drivers (11 boot service, 12 runtime), firmware never starts an application from it",
        efi::subsystem_name(*subsystem))]
    Subsystem { name: String, subsystem: u16 },
    #[error("{name}: PE machine {machine:#06x} ({}): not a machine an option ROM driver can be for (ia32, x64, ebc, aarch64, arm, riscv64, loongarch64)",
        efi::machine_name(*machine))]
    Machine { name: String, machine: u16 },
    #[error("{name}: the EFI image would be {size:#x} bytes, more than the PCIR image length can express ({:#x})", 0xFFFF * BLOCK)]
    ImageTooLarge { name: String, size: usize },
    #[error("the ROM would be {size:#x} bytes, more than a 16 MiB ROM BAR can expose")]
    RomTooLarge { size: usize },
    #[error("{name}: {err}")]
    Compress { name: String, err: CompressError },
    #[error("no PCI vendor/device id for the EFI image of {name}: give --vendor and --device (or --base)")]
    NoIds { name: String },
    #[error("--expect {0}: not one of ovmf, seabios, none")]
    BadExpect(String),
    #[error("the result fails its own check: {0}")]
    Check(String),
}

/// A reachable image to be placed, before the chain flags are set.
struct Placed {
    bytes: Vec<u8>,
    report: BuiltImage,
    /// The EFI driver it must carry (for the check).
    driver: Option<Vec<u8>>,
}

pub fn build(req: &BuildRequest) -> Result<Built, BuildError> {
    if req.base.is_none() && req.parts.is_empty() {
        return Err(BuildError::Empty);
    }
    if let Some(e) = &req.expect {
        if !matches!(e.as_str(), "ovmf" | "seabios" | "none") {
            return Err(BuildError::BadExpect(e.clone()));
        }
    }
    let mut placed = Vec::new();
    let mut base_dropped_bytes = 0;
    if let Some((name, bytes)) = &req.base {
        let a = analyze(bytes).map_err(|err| BuildError::Base {
            name: name.clone(),
            err,
        })?;
        if a.chain_end != ChainEnd::LastFlag && a.chain_end != ChainEnd::EndOfFile {
            let why = match a.chain_end {
                ChainEnd::Truncated => "the file ends inside an image (truncated dump)".to_string(),
                _ => a.notes.join("; "),
            };
            return Err(BuildError::BaseChain {
                name: name.clone(),
                why,
            });
        }
        let mut taken = 0;
        for i in a.reachable() {
            let image = bytes[i.offset..i.offset + i.length].to_vec();
            taken += image.len();
            placed.push(existing(PartKind::Base, name, image)?);
        }
        base_dropped_bytes = bytes.len() - taken;
    }
    let mut slots = Vec::new();
    for p in &req.parts {
        slots.push(match p.kind {
            PartKind::Efi => None,
            kind => Some(existing(kind, &p.name, p.bytes.clone())?),
        });
    }
    let first = placed
        .first()
        .or(slots.iter().flatten().next())
        .map(|p| p.report.clone());
    for (p, slot) in req.parts.iter().zip(slots) {
        match slot {
            Some(image) => placed.push(image),
            None => {
                let ids = ids_for(req, first.as_ref(), &p.name)?;
                placed.push(efi_image(p, ids, req.compress)?);
            }
        }
    }
    // Set the chain: offsets, last flag on the last image only, x86 checksums.
    let mut output = Vec::new();
    let count = placed.len();
    for (index, item) in placed.iter_mut().enumerate() {
        let last = index + 1 == count;
        set_last(&mut item.bytes, last);
        if item.report.code_type == 0x00 {
            item.report.checksum_fixed = fix_checksum(&mut item.bytes);
        }
        item.report.index = index;
        item.report.offset = output.len();
        item.report.last = last;
        output.extend_from_slice(&item.bytes);
    }
    if output.len() > MAX_ROM {
        return Err(BuildError::RomTooLarge { size: output.len() });
    }
    let expected = match &req.expect {
        Some(e) => e.clone(),
        None => expected_firmware(&placed).to_string(),
    };
    let analysis = analyze(&output).map_err(|e| BuildError::Check(e.to_string()))?;
    check(&analysis, &placed, &expected)?;
    Ok(Built {
        images: placed.into_iter().map(|p| p.report).collect(),
        base_dropped_bytes,
        expected_firmware: expected,
        size: output.len(),
        output,
        analysis,
    })
}

/// An existing image (from the base ROM, --x86 or --image): its first PCIR image length of bytes.
fn existing(kind: PartKind, name: &str, mut bytes: Vec<u8>) -> Result<Placed, BuildError> {
    let p = pcir::probe(&Reader::new(&bytes), 0).map_err(|e| BuildError::NotAnImage {
        name: name.to_string(),
        why: e.describe(0),
    })?;
    if kind == PartKind::X86 && p.code_type != 0x00 {
        return Err(BuildError::NotX86 {
            name: name.to_string(),
            code_type: p.code_type,
        });
    }
    if bytes.len() < p.image_length {
        return Err(BuildError::ShortImage {
            name: name.to_string(),
            length: p.image_length,
            size: bytes.len(),
        });
    }
    bytes.truncate(p.image_length);
    let (driver, machine, subsystem, compressed) = if p.code_type == 0x03 {
        let r = Reader::new(&bytes);
        (
            efi::driver_bytes(&bytes).ok().map(|d| d.into_owned()),
            r.u16("EFI.machine", 0x0A).ok(),
            r.u16("EFI.subsystem", 0x08).ok(),
            r.u16("EFI.compression_type", 0x0C).ok().map(|c| c == 1),
        )
    } else {
        (None, None, None, None)
    };
    Ok(Placed {
        report: BuiltImage {
            index: 0,
            source: kind,
            from: name.to_string(),
            offset: 0,
            length: p.image_length,
            code_type: p.code_type,
            vendor_id: p.vendor_id,
            device_id: p.device_id,
            class_code: p.class_code,
            last: false,
            checksum_fixed: false,
            machine,
            subsystem,
            compressed,
            driver_size: driver.as_ref().map(Vec::len),
            payload_size: None,
        },
        bytes,
        driver,
    })
}

/// Vendor, device and class for a new EFI image: the request's, else those of the first image
/// taken as it is (the base ROM's first image, or the first --x86/--image wherever it stands).
fn ids_for(
    req: &BuildRequest,
    first: Option<&BuiltImage>,
    name: &str,
) -> Result<(u16, u16, u32), BuildError> {
    let vendor = req.vendor.or(first.map(|f| f.vendor_id));
    let device = req.device.or(first.map(|f| f.device_id));
    let class = req.class.or(first.map(|f| f.class_code));
    match (vendor, device) {
        (Some(v), Some(d)) => Ok((v, d, class.unwrap_or(0) & 0xFF_FFFF)),
        _ => Err(BuildError::NoIds {
            name: name.to_string(),
        }),
    }
}

/// Wrap a PE driver into an EFI option ROM image.
fn efi_image(
    part: &Part,
    (vendor, device, class): (u16, u16, u32),
    compressed: bool,
) -> Result<Placed, BuildError> {
    let name = part.name.clone();
    let pe_bytes = &part.bytes;
    if pe_bytes.get(..2) != Some(b"MZ") {
        return Err(BuildError::NotMz { name });
    }
    let info = pe::parse(pe_bytes).map_err(|why| BuildError::NotPe {
        name: name.clone(),
        why,
    })?;
    if !matches!(info.subsystem, 11 | 12) {
        return Err(BuildError::Subsystem {
            name,
            subsystem: info.subsystem,
        });
    }
    if !MACHINES.contains(&info.machine) {
        return Err(BuildError::Machine {
            name,
            machine: info.machine,
        });
    }
    let payload = if compressed {
        let stream = compress(pe_bytes).map_err(|err| BuildError::Compress {
            name: name.clone(),
            err,
        })?;
        // Our own decoder must give the driver back before the stream goes into a ROM.
        if decompress(&stream, pe_bytes.len()).as_deref() != Ok(pe_bytes.as_slice()) {
            return Err(BuildError::Check(format!(
                "{name}: the compressed driver does not decompress to the input"
            )));
        }
        stream
    } else {
        pe_bytes.clone()
    };
    let size = (HEADER_END + payload.len()).div_ceil(BLOCK) * BLOCK;
    let units = u16::try_from(size / BLOCK).map_err(|_| BuildError::ImageTooLarge {
        name: name.clone(),
        size,
    })?;
    let offset = if compressed {
        HEADER_END
    } else {
        size - payload.len()
    };
    let offset16 = u16::try_from(offset).map_err(|_| BuildError::ImageTooLarge {
        name: name.clone(),
        size,
    })?;
    let mut img = vec![0u8; HEADER_END];
    img[0..2].copy_from_slice(&[0x55, 0xAA]);
    put16(&mut img, 0x02, units);
    img[0x04..0x08].copy_from_slice(&efi::EFI_SIGNATURE.to_le_bytes());
    put16(&mut img, 0x08, info.subsystem);
    put16(&mut img, 0x0A, info.machine);
    put16(&mut img, 0x0C, u16::from(compressed));
    put16(&mut img, 0x16, offset16);
    put16(&mut img, 0x18, PCIR_OFFSET as u16);
    let p = PCIR_OFFSET;
    img[p..p + 4].copy_from_slice(b"PCIR");
    put16(&mut img, p + 0x04, vendor);
    put16(&mut img, p + 0x06, device);
    put16(&mut img, p + 0x0A, PCIR_LEN);
    img[p + 0x0C] = 3;
    img[p + 0x0D..p + 0x10].copy_from_slice(&class.to_le_bytes()[..3]);
    put16(&mut img, p + 0x10, units);
    img[p + 0x14] = 0x03;
    img.resize(offset, 0xFF);
    img.extend_from_slice(&payload);
    img.resize(size, 0xFF);
    Ok(Placed {
        report: BuiltImage {
            index: 0,
            source: PartKind::Efi,
            from: name,
            offset: 0,
            length: size,
            code_type: 0x03,
            vendor_id: vendor,
            device_id: device,
            class_code: class,
            last: false,
            checksum_fixed: false,
            machine: Some(info.machine),
            subsystem: Some(info.subsystem),
            compressed: Some(compressed),
            driver_size: Some(pe_bytes.len()),
            payload_size: Some(payload.len()),
        },
        bytes: img,
        driver: Some(pe_bytes.clone()),
    })
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Set or clear the last-image flag in the PCIR indicator (and NVIDIA's NPDE copy of it).
fn set_last(image: &mut [u8], last: bool) {
    let r = Reader::new(image);
    let Ok(p) = pcir::probe(&r, 0) else { return };
    let npde = pcir::npde(&r, 0, &p).filter(|n| n.length > 0x0A);
    let set = |b: &mut u8| *b = if last { *b | 0x80 } else { *b & 0x7F };
    if let Some(b) = image.get_mut(p.offset + 0x15) {
        set(b);
    }
    if let Some(n) = npde {
        if let Some(b) = image.get_mut(n.offset + 0x0A) {
            set(b);
        }
    }
}

/// Make the image's bytes sum to 0 by its last byte (the checksum byte). True when changed.
fn fix_checksum(image: &mut [u8]) -> bool {
    let sum = image.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    match image.last_mut() {
        Some(b) if sum != 0 => {
            *b = b.wrapping_sub(sum);
            true
        }
        _ => false,
    }
}

/// What `rom parse` should say about the result: OVMF when an x64 driver holding the GOP GUID
/// sits in a display-class ROM; SeaBIOS when the x86 image it would run (the first one: its ids
/// are the ones SeaBIOS looks for without a device, and build sets its checksum) is a VGA BIOS,
/// i.e. of display class; none otherwise (a network boot ROM shows nothing before the OS).
fn expected_firmware(placed: &[Placed]) -> &'static str {
    let rom_display = placed.first().is_some_and(|p| p.report.class_code >> 16 == 0x03);
    let gop = placed.iter().any(|p| {
        p.report.machine == Some(MACHINE_X64)
            && (p.report.class_code >> 16 == 0x03 || rom_display)
            && p.driver
                .as_deref()
                .is_some_and(|d| gop::contains(d, &gop::GOP_GUID))
    });
    if gop {
        "ovmf"
    } else if placed
        .iter()
        .find(|p| p.report.code_type == 0x00)
        .is_some_and(|p| p.report.class_code >> 16 == 0x03)
    {
        "seabios"
    } else {
        "none"
    }
}

/// The analysis of the output must show exactly what was placed, all reachable, well formed.
fn check(a: &RomAnalysis, placed: &[Placed], expected: &str) -> Result<(), BuildError> {
    let fail = |why: String| Err(BuildError::Check(why));
    if a.prefix_bytes != 0 || a.chain_end != ChainEnd::LastFlag {
        return fail(format!(
            "the chain does not end at a last-image flag: {}",
            a.notes.join("; ")
        ));
    }
    let reachable: Vec<_> = a.reachable().collect();
    if reachable.len() != placed.len() {
        return fail(format!(
            "{} image(s) reachable, {} placed",
            reachable.len(),
            placed.len()
        ));
    }
    for (got, want) in reachable.iter().zip(placed) {
        let r = &want.report;
        if got.offset != r.offset || got.length != r.length || got.truncated {
            return fail(format!("image {} is not where it was placed", r.index));
        }
        if got.code_type == 0x00 && !got.checksum_ok {
            return fail(format!("x86 image {} has a bad checksum", r.index));
        }
        if r.source == PartKind::Efi {
            let ok = got
                .efi
                .as_ref()
                .is_some_and(|e| e.pe_ok && e.driver_size == r.driver_size);
            if !ok {
                return fail(format!(
                    "EFI image {} does not read back as its driver: {}",
                    r.index,
                    got.problems.join("; ")
                ));
            }
        }
    }
    if a.verdict.firmware != expected {
        return fail(format!(
            "firmware verdict is {}, expected {expected} ({})",
            a.verdict.firmware,
            a.verdict.lines.first().cloned().unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small x86 image: 55AA, PCIR at 0x20 (display class), `units` x 512 bytes, checksum set.
    pub fn x86_image(vendor: u16, device: u16, units: u8) -> Vec<u8> {
        let mut v = vec![0u8; usize::from(units) * BLOCK];
        v[0..3].copy_from_slice(&[0x55, 0xAA, units]);
        put16(&mut v, 0x18, 0x20);
        v[0x20..0x24].copy_from_slice(b"PCIR");
        put16(&mut v, 0x24, vendor);
        put16(&mut v, 0x26, device);
        put16(&mut v, 0x2A, 0x18);
        v[0x2F] = 0x03;
        put16(&mut v, 0x30, u16::from(units));
        v[0x35] = 0x80;
        fix_checksum(&mut v);
        v
    }

    /// A PE32+ driver-shaped file with some text and, when `gop`, the GOP protocol GUID.
    pub fn efi_pe(machine: u16, subsystem: u16, gop: bool) -> Vec<u8> {
        let mut v = vec![0u8; 0x400];
        v[0..2].copy_from_slice(b"MZ");
        v[0x3C..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        v[0x40..0x44].copy_from_slice(b"PE\0\0");
        put16(&mut v, 0x44, machine);
        put16(&mut v, 0x46, 1);
        put16(&mut v, 0x54, 240);
        put16(&mut v, 0x58, 0x20B);
        v[0x58 + 56..0x58 + 60].copy_from_slice(&0x2000u32.to_le_bytes());
        put16(&mut v, 0x58 + 68, subsystem);
        for i in 0..200 {
            v.extend_from_slice(format!("driver string {i} graphics output ").as_bytes());
        }
        if gop {
            v.extend_from_slice(&gop::GOP_GUID);
        }
        v
    }

    fn part(kind: PartKind, bytes: Vec<u8>) -> Part {
        Part::new(kind, format!("{kind:?}"), bytes)
    }

    #[test]
    fn appends_a_gop_driver_to_a_legacy_rom_and_moves_the_last_flag() {
        let base = x86_image(0x10de, 0x1b80, 4);
        for compress in [false, true] {
            let req = BuildRequest {
                base: Some(("base.rom".into(), base.clone())),
                parts: vec![part(PartKind::Efi, efi_pe(MACHINE_X64, 11, true))],
                compress,
                ..BuildRequest::default()
            };
            let b = build(&req).unwrap();
            assert_eq!(b.expected_firmware, "ovmf");
            assert_eq!(b.analysis.verdict.firmware, "ovmf");
            let imgs = &b.analysis.images;
            assert_eq!(imgs.len(), 2);
            assert!(!imgs[0].last && imgs[1].last && imgs[0].checksum_ok);
            assert_eq!(
                (imgs[1].vendor_id, imgs[1].device_id, imgs[1].class_code),
                (0x10de, 0x1b80, 0x030000)
            );
            let e = imgs[1].efi.as_ref().unwrap();
            assert_eq!(
                (e.machine, e.subsystem, e.compressed),
                (MACHINE_X64, 11, compress)
            );
            assert!(b.images[0].checksum_fixed);
            assert_eq!(b.output.len() % BLOCK, 0);
        }
    }

    #[test]
    fn refuses_applications_unknown_machines_and_non_pe() {
        let base = Some(("b".to_string(), x86_image(1, 2, 1)));
        let with = |pe: Vec<u8>| BuildRequest {
            base: base.clone(),
            parts: vec![part(PartKind::Efi, pe)],
            ..BuildRequest::default()
        };
        assert!(matches!(
            build(&with(efi_pe(MACHINE_X64, 10, true))),
            Err(BuildError::Subsystem { .. })
        ));
        assert!(matches!(
            build(&with(efi_pe(0x0200, 11, true))),
            Err(BuildError::Machine { .. })
        ));
        assert!(matches!(
            build(&with(b"VZ\0\0".to_vec())),
            Err(BuildError::NotMz { .. })
        ));
        let no_ids = BuildRequest {
            parts: vec![part(PartKind::Efi, efi_pe(MACHINE_X64, 11, false))],
            ..BuildRequest::default()
        };
        assert!(matches!(build(&no_ids), Err(BuildError::NoIds { .. })));
        let efi_as_x86 = BuildRequest {
            parts: vec![part(
                PartKind::X86,
                build(&with(efi_pe(MACHINE_X64, 11, true))).unwrap().output[512..].to_vec(),
            )],
            ..BuildRequest::default()
        };
        assert!(matches!(build(&efi_as_x86), Err(BuildError::NotX86 { .. })));
        assert_eq!(build(&BuildRequest::default()).unwrap_err(), BuildError::Empty);
    }

    #[test]
    fn a_wrong_expectation_writes_nothing() {
        let req = BuildRequest {
            parts: vec![part(PartKind::X86, x86_image(1, 2, 1))],
            expect: Some("ovmf".into()),
            ..BuildRequest::default()
        };
        let e = build(&req).unwrap_err();
        assert!(
            e.to_string()
                .contains("firmware verdict is seabios, expected ovmf"),
            "{e}"
        );
    }
}
