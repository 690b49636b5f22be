//! `rom patch`: cut what comes before the first valid image (NVIDIA dump headers) and optionally
//! correct x86 checksums. The result is built in memory and must analyse as a valid chain
//! starting at offset 0; otherwise nothing is produced.

use serde::Serialize;

use super::{analyze, ChainEnd, Prefix, RomAnalysis, RomError};

#[derive(Debug, Clone, Serialize)]
pub struct ChecksumFix {
    pub image: usize,
    /// Offset of the changed byte in the output file (the image's last byte).
    pub offset: usize,
    pub old: u8,
    pub new: u8,
}

/// What `rom patch` will write and why.
#[derive(Debug, Clone, Serialize)]
pub struct Patched {
    /// The bytes removed from the front (0 when there was no header).
    pub removed_bytes: usize,
    pub removed: Option<Prefix>,
    pub checksum_fixes: Vec<ChecksumFix>,
    #[serde(skip)]
    pub output: Vec<u8>,
    /// The analysis of the output.
    #[serde(skip)]
    pub result: RomAnalysis,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Rom(#[from] RomError),
    #[error("the result would not be a valid chain: {0}")]
    InvalidResult(String),
}

pub fn patch(input: &[u8], fix_checksum: bool) -> Result<Patched, PatchError> {
    let before = analyze(input)?;
    let cut = before.prefix_bytes;
    let mut output = input.get(cut..).unwrap_or_default().to_vec();
    let mut checksum_fixes = Vec::new();
    if fix_checksum {
        for image in before
            .images
            .iter()
            .filter(|i| i.code_type == 0x00 && !i.checksum_ok && !i.truncated)
        {
            let Some(at) = (image.offset + image.length).checked_sub(cut + 1) else {
                continue;
            };
            let Some(byte) = output.get_mut(at) else { continue };
            let old = *byte;
            let new = old.wrapping_sub(image.checksum);
            *byte = new;
            checksum_fixes.push(ChecksumFix {
                image: image.index,
                offset: at,
                old,
                new,
            });
        }
    }
    let result = analyze(&output)?;
    if result.prefix_bytes != 0 {
        return Err(PatchError::InvalidResult(format!(
            "the first image is at {:#x}, not 0",
            result.prefix_bytes
        )));
    }
    match result.chain_end {
        ChainEnd::LastFlag => {}
        ChainEnd::Truncated | ChainEnd::EndOfFile => {
            return Err(PatchError::InvalidResult(
                "the chain runs past the end of the file (truncated dump); dump the full ROM first".into(),
            ))
        }
        ChainEnd::Broken | ChainEnd::TooManyImages => {
            return Err(PatchError::InvalidResult(result.notes.join("; ")));
        }
    }
    if let Some(bad) = result
        .reachable()
        .find(|i| i.code_type == 0x00 && !i.checksum_ok && fix_checksum)
    {
        return Err(PatchError::InvalidResult(format!(
            "x86 image {} at {:#x} still has a bad checksum",
            bad.index, bad.offset
        )));
    }
    // The cut must leave what the firmware would do unchanged: the same GOP driver and, unless
    // a checksum was fixed on purpose, the same firmware verdict.
    let (b, r) = (&before.verdict, &result.verdict);
    if b.gop_image != r.gop_image || (checksum_fixes.is_empty() && b.firmware != r.firmware) {
        return Err(PatchError::InvalidResult(format!(
            "the result's verdict differs from the input's (firmware {} -> {}, GOP image {:?} -> {:?})",
            b.firmware, r.firmware, b.gop_image, r.gop_image
        )));
    }
    Ok(Patched {
        removed_bytes: cut,
        removed: before.prefix,
        checksum_fixes,
        output,
        result,
    })
}
