//! Canonical Huffman lookup tables: one probe for short codes, a bounded walk for long ones.

use super::bits::BitReader;
use super::{LEN_MASK, LONG, MAX_CODE_LEN, NC, SYM_SHIFT};

/// A canonical Huffman decoding table with a `SIZE = 1 << BITS` entry first-level lookup.
pub(super) struct Table<const BITS: u32, const SIZE: usize> {
    pub(super) fast: Box<[u16; SIZE]>,
    /// Codes of each length, and the symbols sorted by (length, symbol), for codes over `BITS`.
    pub(super) counts: [u16; MAX_CODE_LEN + 1],
    pub(super) sorted: Vec<u16>,
}

impl<const BITS: u32, const SIZE: usize> Table<BITS, SIZE> {
    pub(super) fn new() -> Self {
        const { assert!(SIZE == 1 << BITS && BITS as usize <= MAX_CODE_LEN) };
        Table {
            fast: Box::new([0; SIZE]),
            counts: [0; MAX_CODE_LEN + 1],
            sorted: Vec::with_capacity(NC),
        }
    }

    /// Every probe yields `symbol` and consumes no bits (the encoder's one-symbol block case).
    pub(super) fn set_single(&mut self, symbol: u16) {
        self.fast.fill((symbol & 0x1ff) << SYM_SHIFT);
        self.counts = [0; MAX_CODE_LEN + 1];
        self.sorted.clear();
    }

    /// Builds the table from code lengths; the code must be complete, as every real encoder's is.
    pub(super) fn build(&mut self, lengths: &[u8]) -> Result<(), String> {
        let mut counts = [0u16; MAX_CODE_LEN + 1];
        for (symbol, &len) in lengths.iter().enumerate() {
            let slot = counts
                .get_mut(usize::from(len))
                .ok_or_else(|| format!("code length {len} for symbol {symbol} is over {MAX_CODE_LEN}"))?;
            *slot += 1;
        }
        counts[0] = 0;
        let space: u32 = (1..=MAX_CODE_LEN)
            .map(|len| u32::from(counts[len]) << (MAX_CODE_LEN - len))
            .sum();
        let full = 1u32 << MAX_CODE_LEN;
        if space == 0 {
            return Err("code table gives no symbol a code".into());
        }
        if space != full {
            let kind = if space < full {
                "incomplete"
            } else {
                "over-subscribed"
            };
            return Err(format!(
                "{kind} code table (lengths fill {space}/{full} of the code space)"
            ));
        }

        // First canonical code of each length, and where each length's symbols start in `sorted`.
        let mut next_code = [0u32; MAX_CODE_LEN + 1];
        let mut next_slot = [0usize; MAX_CODE_LEN + 1];
        let (mut code, mut slot) = (0u32, 0usize);
        for len in 1..=MAX_CODE_LEN {
            code = (code + u32::from(counts[len - 1])) << 1;
            next_code[len] = code;
            slot += usize::from(counts[len - 1]);
            next_slot[len] = slot;
        }
        self.sorted.clear();
        self.sorted.resize(slot + usize::from(counts[MAX_CODE_LEN]), 0);
        let bad = || "code table does not fit its lookup".to_string();
        for (symbol, &len) in lengths.iter().enumerate() {
            let len = usize::from(len);
            if len == 0 {
                continue;
            }
            let symbol = symbol as u16;
            let code = next_code[len];
            next_code[len] += 1;
            *self.sorted.get_mut(next_slot[len]).ok_or_else(bad)? = symbol;
            next_slot[len] += 1;
            if len <= BITS as usize {
                let spread = BITS as usize - len;
                let start = (code as usize) << spread;
                let entry = (symbol << SYM_SHIFT) | len as u16;
                self.fast
                    .get_mut(start..start + (1 << spread))
                    .ok_or_else(bad)?
                    .fill(entry);
            } else {
                let prefix = (code >> (len - BITS as usize)) as usize;
                *self.fast.get_mut(prefix).ok_or_else(bad)? = LONG;
            }
        }
        self.counts = counts;
        Ok(())
    }

    /// Decodes one symbol; the caller has ensured 16 bits are loaded.
    #[inline(always)]
    pub(super) fn decode(&self, bits: &mut BitReader<'_>) -> Option<(u16, u32)> {
        let entry = self.fast[(bits.buf >> (64 - BITS)) as usize & (SIZE - 1)];
        if entry & LONG == 0 {
            let len = u32::from(entry & LEN_MASK);
            bits.buf = bits.buf.wrapping_shl(u32::from(entry));
            bits.count -= len;
            Some((entry >> SYM_SHIFT, len))
        } else {
            let (symbol, len) = self.decode_long(bits.peek(MAX_CODE_LEN as u32))?;
            bits.skip(len);
            Some((symbol, len))
        }
    }

    /// Canonical decoding of the code at the top of `window` (the next 16 bits).
    #[cold]
    #[inline(never)]
    pub(super) fn decode_long(&self, window: u32) -> Option<(u16, u32)> {
        let (mut first, mut index) = (0u32, 0usize);
        for len in 1..=MAX_CODE_LEN {
            let code = window >> (MAX_CODE_LEN - len);
            let count = u32::from(self.counts[len]);
            if let Some(i) = code.checked_sub(first).filter(|&i| i < count) {
                let symbol = *self.sorted.get(index + i as usize)?;
                return Some((symbol, len as u32));
            }
            index += count as usize;
            first = (first + count) << 1;
        }
        None
    }
}
