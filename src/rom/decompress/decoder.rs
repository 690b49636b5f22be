//! The block decoder: block headers, code-length tables, and the symbol loop.

use super::bits::BitReader;
use super::huffman::Table;
use super::{
    DecompressError, CBIT, C_BITS, C_SIZE, LEN_MASK, LONG, MAX_CODE_LEN, MAX_MATCH, MIN_MATCH, NC, NP, NPT,
    NT, PT_BITS, PT_SIZE, SYM_SHIFT, TBIT, T_SPECIAL,
};

/// What reading a code-length list produced: one symbol coded in zero bits, or lengths to build.
pub(super) enum Lengths {
    Single(u32),
    List,
}

pub(super) struct Decoder<'a> {
    pub(super) bits: BitReader<'a>,
    pub(super) pbit: u32,
    pub(super) c: Table<C_BITS, C_SIZE>,
    pub(super) p: Table<PT_BITS, PT_SIZE>,
    pub(super) t: Table<PT_BITS, PT_SIZE>,
}

impl Decoder<'_> {
    pub(super) fn run(&mut self, original: usize) -> Result<Vec<u8>, DecompressError> {
        match self.decode_all(original) {
            // An error found after decoding ran into the implied zeros past the data is most
            // likely the zeros' doing: the stream is truncated, and that is the error to report.
            Err(_) if self.bits.consumed() > self.bits.data.len() * 8 => Err(self.bits.past_end()),
            Err(e) => Err(e),
            Ok(out) => self.bits.check_end().map(|()| out),
        }
    }

    pub(super) fn decode_all(&mut self, original: usize) -> Result<Vec<u8>, DecompressError> {
        // Sized up front with room for whole-chunk match copies to overrun; cut at the end.
        let Some(size) = original.checked_add(COPY_SLACK) else {
            return Err(DecompressError::new(
                format!("original size {original} is too large"),
                4,
            ));
        };
        let mut out = vec![0u8; size];
        let mut pos = 0;
        while pos < original {
            let block = self.read_block_header()?;
            let mut bits = self.bits;
            let result = self.decode_symbols(&mut bits, &mut out, &mut pos, block, original);
            self.bits = bits;
            result?;
        }
        out.truncate(original);
        Ok(out)
    }

    /// Decodes up to `count` symbols of the current block into `out` from `*pos`, stopping early
    /// when the output is full. It works on a local copy of the bit reader, written back once, so
    /// that the reader lives in registers rather than memory.
    #[inline(never)]
    pub(super) fn decode_symbols(
        &self,
        reader: &mut BitReader<'_>,
        out: &mut [u8],
        pos: &mut usize,
        count: u32,
        original: usize,
    ) -> Result<(), DecompressError> {
        let mut bits = *reader;
        // Errors leave through the labelled block rather than `?` in a closure, which would take
        // the bit reader's address and pin it to memory.
        macro_rules! attempt {
            ($label:lifetime, $e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => break $label Err(e),
                }
            };
        }
        let mut at = *pos;
        let mut left = count;
        let result = 'run: {
            // The fast region: two whole-word refills are inside the data and a longest match fits
            // before the original size, so no symbol here needs the tail's checks. The buffer is
            // topped up without testing its count first (a load, a shift and an OR, cheaper than
            // a branch the data decides), and up to three literals are taken from one top-up:
            // three codes of at most 16 bits fit in the 56 bits a refill guarantees.
            while left >= 3 && at + MAX_MATCH <= original && bits.loaded + 16 <= bits.data.len() {
                attempt!('run, bits.refill());
                let mut entry = self.c.fast[bits.index::<C_BITS>()];
                let mut literals = 0;
                while literals < 3 && entry & LONG == 0 && entry >> SYM_SHIFT < 256 {
                    bits.consume(entry);
                    out[at] = (entry >> SYM_SHIFT) as u8;
                    at += 1;
                    literals += 1;
                    entry = self.c.fast[bits.index::<C_BITS>()];
                }
                left -= literals;
                if literals > 0 {
                    continue;
                }
                // Not a literal with a short code: the entry probed from the full buffer is used
                // as it is (a match length, or the prefix of a long code).
                let (c, c_len) = if entry & LONG == 0 {
                    bits.consume(entry);
                    (entry >> SYM_SHIFT, u32::from(entry & LEN_MASK))
                } else {
                    match self.c.decode_long(bits.peek(MAX_CODE_LEN as u32)) {
                        Some((c, len)) => {
                            bits.skip(len);
                            (c, len)
                        }
                        None => break 'run Err(self.bad_code("char/length", bits.consumed())),
                    }
                };
                left -= 1;
                if c < 256 {
                    out[at] = c as u8;
                    at += 1;
                    continue;
                }
                // A match: its position code (16 bits) and extra bits (29) must be loaded.
                attempt!('run, bits.ensure(MAX_CODE_LEN as u32 + 29));
                let entry = self.p.fast[bits.index::<PT_BITS>()];
                let (p, p_len) = if entry & LONG == 0 {
                    (entry >> SYM_SHIFT, u32::from(entry & LEN_MASK))
                } else {
                    match self.p.decode_long(bits.peek(MAX_CODE_LEN as u32)) {
                        Some(found) => found,
                        None => break 'run Err(self.bad_code("position", bits.consumed() - c_len as usize)),
                    }
                };
                // Position class p means p - 1 raw bits after the code (none for 0 and 1), so the
                // distance is 2^(p-1) + bits + 1 (p + 1 for 0 and 1). Taken without a branch on p:
                // the raw bits come from the same buffer word as the code, one shift consumes both.
                let extra = u32::from(p.saturating_sub(1));
                let after_code = bits.buf << p_len;
                let low = ((after_code >> (63 - extra)) >> 1) as usize;
                bits.buf = after_code << extra;
                bits.count -= p_len + extra;
                let distance = (1usize << extra) + usize::from(p != 0) + low;
                if distance > at {
                    let start = bits.consumed() - (c_len + p_len + extra) as usize;
                    break 'run Err(self.before_start(distance, at, start));
                }
                let len = usize::from(c) + MIN_MATCH - 256;
                copy_match(out, at, distance, len);
                at += len;
            }
            for _ in 0..left {
                if at >= original {
                    break;
                }
                attempt!('run, bits.ensure(MAX_CODE_LEN as u32));
                let Some((c, c_len)) = self.c.decode(&mut bits) else {
                    break 'run Err(self.bad_code("char/length", bits.consumed()));
                };
                if c < 256 {
                    out[at] = c as u8;
                    at += 1;
                    continue;
                }
                let len = usize::from(c) + MIN_MATCH - 256;
                attempt!('run, bits.ensure(MAX_CODE_LEN as u32));
                let Some((p, p_len)) = self.p.decode(&mut bits) else {
                    break 'run Err(self.bad_code("position", bits.consumed() - c_len as usize));
                };
                let (distance, extra) = if p > 1 {
                    let extra = u32::from(p) - 1;
                    attempt!('run, bits.ensure(extra));
                    let low = bits.peek(extra) as usize;
                    bits.skip(extra);
                    ((1usize << extra) + low + 1, extra)
                } else {
                    (usize::from(p) + 1, 0)
                };
                if distance > at {
                    let start = bits.consumed() - (c_len + p_len + extra) as usize;
                    break 'run Err(self.before_start(distance, at, start));
                }
                let len = len.min(original - at);
                copy_match(out, at, distance, len);
                at += len;
            }
            Ok(())
        };
        *pos = at;
        *reader = bits;
        result
    }

    #[cold]
    fn before_start(&self, distance: usize, at: usize, start: usize) -> DecompressError {
        DecompressError::new(
            format!("match distance {distance} reaches before the start of the output ({at} bytes so far)"),
            BitReader::offset_of(start),
        )
    }

    #[cold]
    pub(super) fn bad_code(&self, table: &str, start: usize) -> DecompressError {
        DecompressError::new(format!("bits match no {table} code"), BitReader::offset_of(start))
    }

    /// Reads a block's symbol count and its three tables.
    pub(super) fn read_block_header(&mut self) -> Result<u32, DecompressError> {
        let size = self.bits.get(16)?;
        let mut lens = [0u8; NPT];

        let at = self.bits.consumed();
        let table_err = |what: String| DecompressError::new(what, BitReader::offset_of(at));
        match self.read_pt_lengths(&mut lens, TBIT, Some(T_SPECIAL))? {
            Lengths::Single(s) if s as usize >= NT => {
                return Err(table_err(format!(
                    "extra table names symbol {s}, beyond its {NT}"
                )));
            }
            Lengths::Single(s) => self.t.set_single(s as u16),
            Lengths::List => self
                .t
                .build(&lens[..NT])
                .map_err(|e| table_err(format!("extra table: {e}")))?,
        }

        self.read_c_lengths()?;

        let at = self.bits.consumed();
        let table_err = |what: String| DecompressError::new(what, BitReader::offset_of(at));
        lens = [0; NPT];
        match self.read_pt_lengths(&mut lens, self.pbit, None)? {
            Lengths::Single(s) if s as usize >= NP => {
                return Err(table_err(format!(
                    "position table names symbol {s}, beyond its {NP}"
                )));
            }
            Lengths::Single(s) => self.p.set_single(s as u16),
            Lengths::List => self
                .p
                .build(&lens[..NP])
                .map_err(|e| table_err(format!("position table: {e}")))?,
        }

        // EDK2 keeps the count in 16 bits and decrements before testing it, so 0 means 65536.
        Ok(if size == 0 { 1 << 16 } else { size })
    }

    /// Reads the code lengths of the extra or the position table into `lens`.
    pub(super) fn read_pt_lengths(
        &mut self,
        lens: &mut [u8; NPT],
        nbit: u32,
        special: Option<usize>,
    ) -> Result<Lengths, DecompressError> {
        let number = self.bits.get(nbit)? as usize;
        if number == 0 {
            return Ok(Lengths::Single(self.bits.get(nbit)?));
        }
        let mut i = 0;
        while i < number.min(NPT) {
            self.bits.ensure(MAX_CODE_LEN as u32)?;
            let mut len = self.bits.peek(3);
            if len < 7 {
                self.bits.skip(3);
            } else {
                // 7 and up: "111", then one 1 per extra unit, then a 0.
                let ones = (self.bits.peek(13) << 22).leading_ones();
                len += ones;
                if len as usize > MAX_CODE_LEN {
                    return Err(DecompressError::new(
                        format!("code length {len} for symbol {i} is over {MAX_CODE_LEN}"),
                        self.bits.offset(),
                    ));
                }
                self.bits.skip(3 + ones + 1);
            }
            if let Some(slot) = lens.get_mut(i) {
                *slot = len as u8;
            }
            i += 1;
            if special == Some(i) {
                let zeros = self.bits.get(2)? as usize;
                for slot in lens.iter_mut().skip(i).take(zeros) {
                    *slot = 0;
                }
                i = (i + zeros).min(NPT);
            }
        }
        Ok(Lengths::List)
    }

    /// Reads the char/length table's code lengths (coded with the extra table) and builds it.
    pub(super) fn read_c_lengths(&mut self) -> Result<(), DecompressError> {
        let at = self.bits.consumed();
        let number = self.bits.get(CBIT)? as usize;
        if number == 0 {
            let s = self.bits.get(CBIT)?;
            if s as usize >= NC {
                return Err(DecompressError::new(
                    format!("char/length table names symbol {s}, beyond its {NC}"),
                    BitReader::offset_of(at),
                ));
            }
            self.c.set_single(s as u16);
            return Ok(());
        }
        let mut lens = [0u8; NC];
        let mut i = 0;
        while i < number.min(NC) {
            self.bits.ensure(MAX_CODE_LEN as u32)?;
            let sym_at = self.bits.consumed();
            let (t, _) = self
                .t
                .decode(&mut self.bits)
                .ok_or_else(|| self.bad_code("extra", sym_at))?;
            let zeros = match t {
                0 => 1,
                1 => self.bits.get(4)? as usize + 3,
                2 => self.bits.get(CBIT)? as usize + 20,
                len => {
                    if let Some(slot) = lens.get_mut(i) {
                        *slot = (len - 2) as u8;
                    }
                    i += 1;
                    continue;
                }
            };
            // `lens` starts zeroed, so a run only moves the index.
            i = (i + zeros).min(NC);
        }
        self.c
            .build(&lens)
            .map_err(|e| DecompressError::new(format!("char/length table: {e}"), BitReader::offset_of(at)))
    }
}

/// Spare bytes past the original size, so match copies can move whole 16-byte chunks.
pub(super) const COPY_SLACK: usize = 16;

/// Writes `len` bytes at `pos` copied from `distance` back. Needs `1 <= distance <= pos` and
/// `pos + len + COPY_SLACK <= out.len()`; may scribble on up to 15 bytes past `pos + len`.
#[inline(always)]
pub(super) fn copy_match(out: &mut [u8], pos: usize, distance: usize, len: usize) {
    let src = pos - distance;
    if distance >= 16 {
        // Each chunk's source ends at or before its destination starts, so it is already final.
        let mut k = 0;
        while k < len {
            out.copy_within(src + k..src + k + 16, pos + k);
            k += 16;
        }
    } else if distance >= 8 {
        // The same in 8-byte chunks (the overrun stays within the 16 bytes of slack).
        let mut k = 0;
        while k < len {
            out.copy_within(src + k..src + k + 8, pos + k);
            k += 8;
        }
    } else if distance == 1 {
        let byte = out[src];
        out[pos..pos + len].fill(byte);
    } else {
        // A short period: byte by byte, each byte reading one written `distance` earlier.
        for k in 0..len {
            out[pos + k] = out[src + k];
        }
    }
}
