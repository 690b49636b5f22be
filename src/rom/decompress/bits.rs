//! The MSB-first bit reader the decoder pulls codes from.

use super::{DecompressError, END_SLACK_BYTES, HEADER_LEN};

/// An MSB-first bit reader over the compressed data. `buf` holds `count` valid bits at its top;
/// the bits below them may hold the start of the next unread byte, which the next refill ORs in
/// again at the same place, so they never need clearing. It is `Copy` and its slow paths take it
/// by value, so the hot loop can keep it in registers.
#[derive(Clone, Copy)]
pub(super) struct BitReader<'a> {
    pub(super) data: &'a [u8],
    pub(super) buf: u64,
    pub(super) count: u32,
    /// Bytes loaded into `buf` so far, including implied zeros past the end of `data`.
    pub(super) loaded: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            buf: 0,
            count: 0,
            loaded: 0,
        }
    }

    /// Bits consumed so far.
    pub(super) fn consumed(self) -> usize {
        self.loaded * 8 - self.count as usize
    }

    /// Stream offset (header included) of the byte holding the next unread bit.
    pub(super) fn offset(self) -> usize {
        HEADER_LEN + self.consumed() / 8
    }

    pub(super) fn offset_of(bit: usize) -> usize {
        HEADER_LEN + bit / 8
    }

    #[inline(always)]
    pub(super) fn ensure(&mut self, n: u32) -> Result<(), DecompressError> {
        if self.count < n {
            self.refill()?;
        }
        Ok(())
    }

    /// Tops the buffer up to at least 56 valid bits.
    #[inline(always)]
    pub(super) fn refill(&mut self) -> Result<(), DecompressError> {
        match self.data.get(self.loaded..).and_then(<[u8]>::first_chunk::<8>) {
            Some(chunk) => {
                // count <= 63 here, so the shift is in range; whole bytes that fit are kept.
                self.buf |= u64::from_be_bytes(*chunk) >> self.count;
                self.loaded += ((63 - self.count) >> 3) as usize;
                self.count |= 56;
                Ok(())
            }
            None => {
                *self = self.refill_tail()?;
                Ok(())
            }
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn refill_tail(mut self) -> Result<Self, DecompressError> {
        while self.count <= 56 {
            let byte = match self.data.get(self.loaded) {
                Some(&b) => b,
                None => {
                    // With this many implied zeros loaded and the buffer not yet full, more than
                    // END_SLACK_BYTES of them have been consumed.
                    if self.loaded >= self.data.len() + END_SLACK_BYTES + 8 {
                        return Err(self.past_end());
                    }
                    0
                }
            };
            self.buf |= u64::from(byte) << (56 - self.count);
            self.count += 8;
            self.loaded += 1;
        }
        Ok(self)
    }

    pub(super) fn past_end(self) -> DecompressError {
        DecompressError::new(
            format!(
                "compressed data ({} bytes declared) ended while symbols were still needed",
                self.data.len()
            ),
            HEADER_LEN + self.data.len(),
        )
    }

    /// Fails if decoding consumed more implied zero padding than the slack allows.
    pub(super) fn check_end(self) -> Result<(), DecompressError> {
        if self.consumed() > (self.data.len() + END_SLACK_BYTES) * 8 {
            return Err(self.past_end());
        }
        Ok(())
    }

    /// The next `n` bits (`n` in 1..=32); callers have ensured they are loaded.
    #[inline(always)]
    pub(super) fn peek(&self, n: u32) -> u32 {
        (self.buf >> (64 - n)) as u32
    }

    /// The top `BITS` bits, as a lookup index.
    #[inline(always)]
    pub(super) fn index<const BITS: u32>(&self) -> usize {
        (self.buf >> (64 - BITS)) as usize
    }

    /// Consumes the code a fast-table entry describes (its length is in the entry's low bits;
    /// see `LEN_MASK`): the shift takes the whole entry, masked to 6 bits as the hardware does,
    /// so the length needs no extraction on the critical path.
    #[inline(always)]
    pub(super) fn consume(&mut self, entry: u16) {
        self.buf = self.buf.wrapping_shl(u32::from(entry));
        self.count -= u32::from(entry & super::LEN_MASK);
    }

    #[inline(always)]
    pub(super) fn skip(&mut self, n: u32) {
        self.buf <<= n;
        self.count -= n;
    }

    /// Reads `n` bits, `n` in 1..=32.
    #[inline(always)]
    pub(super) fn get(&mut self, n: u32) -> Result<u32, DecompressError> {
        self.ensure(n)?;
        let v = self.peek(n);
        self.skip(n);
        Ok(v)
    }
}
