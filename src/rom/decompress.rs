//! PLACEHOLDER: being written by the decompression helper. Contract:
//! `pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError>`
//! decodes the UEFI spec's EFI compression format (u32 compressed size, u32 original size, then
//! LZ77+Huffman blocks; PBIT=4), refuses an original size above `limit`, and never panics.

/// A failure while decoding, with the byte offset in the compressed stream where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at stream offset {offset:#x}")]
pub struct DecompressError {
    pub what: String,
    pub offset: usize,
}

/// The variant of the algorithm: option ROMs use `Efi` (PBIT 4); firmware volumes use `Tiano` (PBIT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Efi,
    Tiano,
}

pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    decompress_variant(input, Variant::Efi, limit)
}

pub fn decompress_variant(_input: &[u8], _variant: Variant, _limit: usize) -> Result<Vec<u8>, DecompressError> {
    Err(DecompressError {
        what: "decoder not written yet".into(),
        offset: 0,
    })
}
