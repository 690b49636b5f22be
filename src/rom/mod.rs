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
pub mod gop;
pub mod patch;
pub mod pcir;
pub mod pe;
pub mod reader;
pub mod verdict;

use serde::Serialize;

pub use chain::{ChainEnd, Image};
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
    let (images, chain_end, notes) = chain::walk(&rom, first);
    let verdict = verdict::decide(&images, chain_end, prefix.as_ref());
    Ok(RomAnalysis {
        size: bytes.len(),
        prefix_bytes: first,
        prefix,
        images,
        chain_end,
        notes,
        verdict,
    })
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
