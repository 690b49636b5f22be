//! Option ROM analysis: the image chain, PCIR and NPDE records, EFI images, EFI decompression,
//! PE headers, the GOP verdict, and the NVIDIA header cut.
//!
//! Everything here works on bytes already in memory. `rom/` never touches sysfs or devices (the
//! `vfio` and `pci` modules fetch the bytes); it never panics on any input, and every loop over
//! the data has a bound. [`analyze`] is the one entry point: `rom parse`, `rom patch` and
//! `rom dump` all read a ROM through it.

pub mod build;
pub mod chain;
pub mod compress;
pub mod decompress;
pub mod efi;
pub mod extract;
pub mod firmware;
pub mod gop;
pub mod identity;
pub mod patch;
pub mod pcir;
pub mod pe;
pub mod reader;
pub mod verdict;

use serde::Serialize;

pub use chain::{ChainEnd, Image};
pub use firmware::{Card, FirmwareView};
pub use identity::Identity;
pub use verdict::Verdict;

use reader::Reader;

/// The JSON schema name of a ROM report.
pub const SCHEMA: &str = "vfiotool.rom/1";

/// What comes before the first image.
#[derive(Debug, Clone, Serialize)]
pub struct Prefix {
    /// "nvgi" for an NVIDIA flash-tool header, "zeros"/"ff" for padding, "unknown" otherwise.
    pub kind: &'static str,
    pub bytes: usize,
    /// What it looked like, for the user: "NVIDIA NVGI header", "0x400 bytes of 0xff", ...
    pub description: String,
}

/// The full analysis of one ROM.
#[derive(Debug, Clone, Serialize)]
pub struct RomAnalysis {
    pub size: usize,
    /// Bytes before the first image (an NVIDIA `NVGI` header, a dump tool's header).
    pub prefix_bytes: usize,
    pub prefix: Option<Prefix>,
    pub images: Vec<Image>,
    /// How firmware's walk of the chain ended.
    pub chain_end: ChainEnd,
    /// Chain-level findings (broken chain, missing last flag), one line each.
    pub notes: Vec<String>,
    pub verdict: Verdict,
    /// What OVMF and SeaBIOS each do with this ROM.
    pub firmware_view: FirmwareView,
    /// Which vBIOS this is (vendor tables in the x86 image).
    pub identity: Identity,
    /// The card's ids against the ROM's, when a device was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_match: Option<DeviceMatch>,
}

/// `device_match` in `vfiotool.rom/1`: the card (from sysfs) against the ROM's x86 image.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceMatch {
    pub card: Card,
    /// vendor:device of the first reachable x86 image, null when there is none.
    pub rom: Option<String>,
    /// SeaBIOS finds an x86 image with the card's vendor and device.
    pub matches: bool,
    /// The card's device id appears only in a PCIR 3.0 device list (which neither firmware reads).
    pub in_device_list_only: bool,
    /// The sentence printed for it.
    pub line: String,
}

impl RomAnalysis {
    pub fn reachable(&self) -> impl Iterator<Item = &Image> {
        self.images.iter().filter(|i| i.reachable)
    }
}

/// Why bytes are not an option ROM at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RomError {
    #[error("empty (0 bytes): not an option ROM")]
    Empty,
    #[error("no option ROM image: no 512-byte-aligned 55AA with a valid PCIR in {size} bytes{}",
        reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NoImage { size: usize, reason: Option<String> },
}

/// Analyse a ROM held in memory.
pub fn analyze(bytes: &[u8]) -> Result<RomAnalysis, RomError> {
    analyze_for(bytes, None)
}

/// Analyse a ROM for a given card: SeaBIOS compares the card's ids, and the GOP judgement uses
/// the card's class.
pub fn analyze_for(bytes: &[u8], card: Option<&Card>) -> Result<RomAnalysis, RomError> {
    if bytes.is_empty() {
        return Err(RomError::Empty);
    }
    let rom = Reader::new(bytes);
    let nvgi = bytes.starts_with(b"NVGI");
    let (first, _) = chain::find_first(&rom, nvgi.then_some(0x10DE)).map_err(|reason| RomError::NoImage {
        size: bytes.len(),
        reason,
    })?;
    let prefix = (first > 0).then(|| describe_prefix(&bytes[..first], nvgi));
    let (mut images, chain_end, notes) = chain::walk(&rom, first);
    let firmware_view = firmware::view(bytes, &images, first, card);
    refine_gop(&mut images, card);
    let verdict = verdict::decide(&images, chain_end, prefix.as_ref(), &firmware_view);
    let identity = identity::read(bytes, &images);
    let device_match = card.map(|c| device_match(c, &images, &firmware_view));
    Ok(RomAnalysis {
        size: bytes.len(),
        prefix_bytes: first,
        prefix,
        images,
        chain_end,
        notes,
        verdict,
        firmware_view,
        identity,
        device_match,
    })
}

/// An EFI image's `gop` flag: the driver names GOP *and* provides it, judged with the ROM it sits
/// in (see `firmware::ovmf::gop_role`); its version is kept only then.
fn refine_gop(images: &mut [Image], card: Option<&Card>) {
    let rom_class = images.first().map(|i| i.class_code).unwrap_or(0);
    for image in images.iter_mut() {
        let (role, _) = firmware::ovmf::gop_role(image, rom_class, card);
        if let Some(e) = image.efi.as_mut() {
            e.gop = role == firmware::ovmf::GopRole::Provides;
            if !e.gop {
                e.gop_version = None;
                e.version_string = None;
            }
        }
    }
}

fn device_match(card: &Card, images: &[Image], view: &FirmwareView) -> DeviceMatch {
    let x86: Vec<&Image> = images
        .iter()
        .filter(|i| i.reachable && i.code_type == 0)
        .collect();
    let matches = x86
        .iter()
        .any(|i| i.vendor_id == card.vendor_id && i.device_id == card.device_id);
    let rom = x86
        .first()
        .map(|i| format!("{:04x}:{:04x}", i.vendor_id, i.device_id));
    let in_device_list_only = !matches && x86.iter().any(|i| i.device_list.contains(&card.device_id));
    let line = match (&rom, matches) {
        (None, _) => format!("the ROM has no x86 image; the card is {}", card.ids()),
        (Some(r), true) => format!("the ROM's x86 image is for {r}, the card's own ids"),
        (Some(r), false) => {
            let ovmf = if view.ovmf.gop_driver.is_some() {
                "; OVMF still loads its EFI driver, which checks the hardware itself"
            } else {
                ""
            };
            format!(
                "SeaBIOS will skip the x86 image: it is for {r}, the card is {}{ovmf}",
                card.ids()
            )
        }
    };
    DeviceMatch {
        card: *card,
        rom,
        matches,
        in_device_list_only,
        line,
    }
}

fn describe_prefix(prefix: &[u8], nvgi: bool) -> Prefix {
    let bytes = prefix.len();
    let (kind, description) = if nvgi {
        ("nvgi", format!("NVIDIA NVGI header ({bytes:#x} bytes)"))
    } else if prefix.iter().all(|b| *b == 0) {
        ("zeros", format!("{bytes:#x} bytes of 0x00"))
    } else if prefix.iter().all(|b| *b == 0xFF) {
        ("ff", format!("{bytes:#x} bytes of 0xff"))
    } else {
        let head = &prefix[..prefix.len().min(4)];
        (
            "unknown",
            format!("{bytes:#x} bytes starting with {}", pcir::printable(head)),
        )
    };
    Prefix {
        kind,
        bytes,
        description,
    }
}
