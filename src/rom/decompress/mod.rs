//! EFI and Tiano decompression: this module owns turning the payload of a compressed EFI option-ROM
//! image (compression type 1) back into the PE image it holds. Nothing else in `rom/` decodes the
//! format; callers hand it the bytes that follow the EFI image header.
//!
//! The format is the one in the UEFI specification's "Compression Algorithm" chapter (LZ77 plus
//! Huffman coding, the same as EDK2's `UefiDecompressLib`):
//!
//! * a header of two little-endian `u32`: the size of the compressed data that follows, then the
//!   size of the original data;
//! * a most-significant-bit-first bit stream of blocks. Each block starts with a 16-bit symbol
//!   count and three code-length tables: the "extra" table (19 symbols, counted in 5 bits) that
//!   codes the lengths of the next one, the char/length table (510 symbols: 256 literal bytes and
//!   match lengths 3..=256) and the position table (counted in 4 bits for EFI, 5 for Tiano);
//! * each symbol is a literal byte or a match, which copies earlier output from a distance coded
//!   by the position table (a bit-length class plus raw low bits).
//!
//! Compatibility policy, decided against EDK2's decoder (what firmware will actually run):
//!
//! * Every well-formed stream EDK2 decodes decodes here to the same bytes, including its quirks:
//!   a 16-bit block size of 0 means 65536 symbols, a match running past the original size is cut
//!   there, position classes beyond the encoder's window are accepted while they stay inside the
//!   output, and bytes after the declared compressed size are ignored.
//! * Where EDK2 reads undefined table memory or writes out of bounds (incomplete, empty or
//!   over-subscribed codes, code lengths over 16, single-symbol tables naming a symbol outside the
//!   alphabet, distances reaching before the output), this decoder returns an error instead.
//! * EDK2 reads zeros once the compressed data runs out. Real encoders end their stream on a byte
//!   boundary within the declared size, so only a little of that zero padding can be needed by a
//!   stream whose size field undercounts its last word; up to [`END_SLACK_BYTES`] are accepted
//!   (decoding exactly as EDK2 would), and a stream needing more is reported as truncated.
//!
//! Error offsets are byte offsets into the input given to [`decompress`], header included.
//!
//! Speed comes from a 64-bit bit buffer refilled eight bytes at a time and kept in registers by the
//! symbol loop, canonical-Huffman lookup tables that resolve every code of up to 12 bits
//! (char/length) or 8 bits (extra, position) in one probe (longer codes, rare in practice, take a
//! bounded canonical walk), and match copies in 16-byte chunks into an output sized up front. The
//! loop is bound by the latency of one table probe per symbol; `benches/compare_decompress.py`
//! measures it against EDK2's C decoder.
//!
//! Files: `bits.rs` the bit reader, `huffman.rs` the lookup tables, `decoder.rs` block headers
//! and the symbol loop, this file the stream header and the entry points.

mod bits;
mod decoder;
mod huffman;
#[cfg(test)]
mod tests;

use bits::BitReader;
use decoder::Decoder;
use huffman::Table;

/// A failure while decoding, with the byte offset in the compressed stream where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at stream offset {offset:#x}")]
pub struct DecompressError {
    pub what: String,
    pub offset: usize,
}

impl DecompressError {
    fn new(what: impl Into<String>, offset: usize) -> Self {
        DecompressError {
            what: what.into(),
            offset,
        }
    }
}

/// The variant of the algorithm: option ROMs use `Efi` (PBIT 4); firmware volumes use `Tiano` (PBIT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Efi,
    Tiano,
}

impl Variant {
    /// Width of the position table's symbol count (EDK2's `mPBit`).
    fn pbit(self) -> u32 {
        match self {
            Variant::Efi => 4,
            Variant::Tiano => 5,
        }
    }
}

/// Size of the stream header: compressed size then original size.
pub const HEADER_LEN: usize = 8;

/// How many bytes of implied zero padding past the declared compressed size a stream may consume
/// (EDK2 supplies zeros there without limit; four bytes is the width of its bit buffer).
pub const END_SLACK_BYTES: usize = 4;

const MAX_CODE_LEN: usize = 16;
/// Char/length alphabet: 256 literals plus match lengths 3..=256.
const NC: usize = 510;
const CBIT: u32 = 9;
/// Extra-table alphabet: code lengths 0..=16 shifted by 2, plus the three zero-run symbols.
const NT: usize = 19;
const TBIT: u32 = 5;
/// Position alphabet the decoder accepts (EDK2's MAXNP, for both variants).
const NP: usize = 31;
/// Largest count of lengths the extra and position tables may carry (EDK2's NPT).
const NPT: usize = 31;
/// The extra table has a 2-bit zero run after its third length.
const T_SPECIAL: usize = 3;
const MIN_MATCH: usize = 3;
/// Longest match: the last char/length symbol (509) less 256, plus `MIN_MATCH`.
const MAX_MATCH: usize = NC - 1 - 256 + MIN_MATCH;

const C_BITS: u32 = 12;
const C_SIZE: usize = 1 << C_BITS;
const PT_BITS: u32 = 8;
const PT_SIZE: usize = 1 << PT_BITS;

/// Lookup entry layout: code length in bits 0..5 (bit 5 clear), symbol in bits 6..15, and `LONG`
/// when the probe is only the prefix of a longer code. The length sits at the bottom so that a
/// shift by the whole entry (masked to 6 bits, as `wrapping_shl` and the hardware do) consumes the
/// code with no extraction step on the decoder's critical path.
const LEN_MASK: u16 = 0x1f;
const SYM_SHIFT: u32 = 6;
const LONG: u16 = 0x8000;

/// Reads the stream header: `(compressed size, original size)`. Nothing past it is checked.
pub fn header(input: &[u8]) -> Result<(u32, u32), DecompressError> {
    let Some(h) = input.first_chunk::<HEADER_LEN>() else {
        return Err(DecompressError::new(
            format!(
                "input of {} bytes is shorter than the {HEADER_LEN}-byte compression header",
                input.len()
            ),
            input.len(),
        ));
    };
    let compressed = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let original = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    Ok((compressed, original))
}

/// Decodes an EFI-compressed stream (the variant option ROMs use), refusing an original size over
/// `limit` before allocating anything.
pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    decompress_variant(input, Variant::Efi, limit)
}

/// Decodes a stream of the given variant, refusing an original size over `limit` before
/// allocating anything.
pub fn decompress_variant(input: &[u8], variant: Variant, limit: usize) -> Result<Vec<u8>, DecompressError> {
    let (compressed, original) = header(input)?;
    let original = usize::try_from(original).unwrap_or(usize::MAX);
    if original > limit {
        return Err(DecompressError::new(
            format!("original size {original} is over the limit of {limit} bytes"),
            4,
        ));
    }
    let end = usize::try_from(compressed)
        .ok()
        .and_then(|c| c.checked_add(HEADER_LEN))
        .filter(|&end| end <= input.len());
    let Some(data) = end.and_then(|end| input.get(HEADER_LEN..end)) else {
        return Err(DecompressError::new(
            format!(
                "declared compressed size {compressed} runs past the end of the {}-byte input",
                input.len()
            ),
            input.len(),
        ));
    };
    if original == 0 {
        return Ok(Vec::new());
    }
    let mut decoder = Decoder {
        bits: BitReader::new(data),
        pbit: variant.pbit(),
        c: Table::new(),
        p: Table::new(),
        t: Table::new(),
    };
    decoder.run(original)
}
