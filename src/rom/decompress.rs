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

/// An MSB-first bit reader over the compressed data. `buf` holds `count` valid bits at its top;
/// the bits below them may hold the start of the next unread byte, which the next refill ORs in
/// again at the same place, so they never need clearing. It is `Copy` and its slow paths take it
/// by value, so the hot loop can keep it in registers.
#[derive(Clone, Copy)]
struct BitReader<'a> {
    data: &'a [u8],
    buf: u64,
    count: u32,
    /// Bytes loaded into `buf` so far, including implied zeros past the end of `data`.
    loaded: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            buf: 0,
            count: 0,
            loaded: 0,
        }
    }

    /// Bits consumed so far.
    fn consumed(self) -> usize {
        self.loaded * 8 - self.count as usize
    }

    /// Stream offset (header included) of the byte holding the next unread bit.
    fn offset(self) -> usize {
        HEADER_LEN + self.consumed() / 8
    }

    fn offset_of(bit: usize) -> usize {
        HEADER_LEN + bit / 8
    }

    #[inline(always)]
    fn ensure(&mut self, n: u32) -> Result<(), DecompressError> {
        if self.count < n {
            self.refill()?;
        }
        Ok(())
    }

    /// Tops the buffer up to at least 56 valid bits.
    #[inline(always)]
    fn refill(&mut self) -> Result<(), DecompressError> {
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
    fn refill_tail(mut self) -> Result<Self, DecompressError> {
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

    fn past_end(self) -> DecompressError {
        DecompressError::new(
            format!(
                "compressed data ({} bytes declared) ended while symbols were still needed",
                self.data.len()
            ),
            HEADER_LEN + self.data.len(),
        )
    }

    /// Fails if decoding consumed more implied zero padding than the slack allows.
    fn check_end(self) -> Result<(), DecompressError> {
        if self.consumed() > (self.data.len() + END_SLACK_BYTES) * 8 {
            return Err(self.past_end());
        }
        Ok(())
    }

    /// The next `n` bits (`n` in 1..=32); callers have ensured they are loaded.
    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        (self.buf >> (64 - n)) as u32
    }

    #[inline(always)]
    fn skip(&mut self, n: u32) {
        self.buf <<= n;
        self.count -= n;
    }

    /// Reads `n` bits, `n` in 1..=32.
    #[inline(always)]
    fn get(&mut self, n: u32) -> Result<u32, DecompressError> {
        self.ensure(n)?;
        let v = self.peek(n);
        self.skip(n);
        Ok(v)
    }
}

/// A canonical Huffman decoding table with a `SIZE = 1 << BITS` entry first-level lookup.
struct Table<const BITS: u32, const SIZE: usize> {
    fast: Box<[u16; SIZE]>,
    /// Codes of each length, and the symbols sorted by (length, symbol), for codes over `BITS`.
    counts: [u16; MAX_CODE_LEN + 1],
    sorted: Vec<u16>,
}

/// What reading a code-length list produced: one symbol coded in zero bits, or lengths to build.
enum Lengths {
    Single(u32),
    List,
}

impl<const BITS: u32, const SIZE: usize> Table<BITS, SIZE> {
    fn new() -> Self {
        const { assert!(SIZE == 1 << BITS && BITS as usize <= MAX_CODE_LEN) };
        Table {
            fast: Box::new([0; SIZE]),
            counts: [0; MAX_CODE_LEN + 1],
            sorted: Vec::with_capacity(NC),
        }
    }

    /// Every probe yields `symbol` and consumes no bits (the encoder's one-symbol block case).
    fn set_single(&mut self, symbol: u16) {
        self.fast.fill((symbol & 0x1ff) << SYM_SHIFT);
        self.counts = [0; MAX_CODE_LEN + 1];
        self.sorted.clear();
    }

    /// Builds the table from code lengths; the code must be complete, as every real encoder's is.
    fn build(&mut self, lengths: &[u8]) -> Result<(), String> {
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
    fn decode(&self, bits: &mut BitReader<'_>) -> Option<(u16, u32)> {
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
    fn decode_long(&self, window: u32) -> Option<(u16, u32)> {
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

struct Decoder<'a> {
    bits: BitReader<'a>,
    pbit: u32,
    c: Table<C_BITS, C_SIZE>,
    p: Table<PT_BITS, PT_SIZE>,
    t: Table<PT_BITS, PT_SIZE>,
}

impl Decoder<'_> {
    fn run(&mut self, original: usize) -> Result<Vec<u8>, DecompressError> {
        match self.decode_all(original) {
            // An error found after decoding ran into the implied zeros past the data is most
            // likely the zeros' doing: the stream is truncated, and that is the error to report.
            Err(_) if self.bits.consumed() > self.bits.data.len() * 8 => Err(self.bits.past_end()),
            Err(e) => Err(e),
            Ok(out) => self.bits.check_end().map(|()| out),
        }
    }

    fn decode_all(&mut self, original: usize) -> Result<Vec<u8>, DecompressError> {
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
    fn decode_symbols(
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
        let result = 'run: {
            for _ in 0..count {
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
                    break 'run Err(DecompressError::new(
                        format!("match distance {distance} reaches before the start of the output ({at} bytes so far)"),
                        BitReader::offset_of(start),
                    ));
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

    fn bad_code(&self, table: &str, start: usize) -> DecompressError {
        DecompressError::new(format!("bits match no {table} code"), BitReader::offset_of(start))
    }

    /// Reads a block's symbol count and its three tables.
    fn read_block_header(&mut self) -> Result<u32, DecompressError> {
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
    fn read_pt_lengths(
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
    fn read_c_lengths(&mut self) -> Result<(), DecompressError> {
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
const COPY_SLACK: usize = 16;

/// Writes `len` bytes at `pos` copied from `distance` back. Needs `1 <= distance <= pos` and
/// `pos + len + COPY_SLACK <= out.len()`; may scribble on up to 15 bytes past `pos + len`.
#[inline(always)]
fn copy_match(out: &mut [u8], pos: usize, distance: usize, len: usize) {
    let src = pos - distance;
    if distance >= 16 {
        // Each chunk's source ends at or before its destination starts, so it is already final.
        let mut k = 0;
        while k < len {
            out.copy_within(src + k..src + k + 16, pos + k);
            k += 16;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// EDK2's `EfiCompress` and `TianoCompress` output (via the `uefi-firmware` PyPI package) for
    /// [`KNOWN_TEXT`]: known answers that need no Python at test time.
    const KNOWN_EFI: &str = "52000000b500000000485492d91b58f1c09f9aec700863419318d91420bf9281c71b69c34f\
        3800246cc9037726fd05cc2e94302ec66ed97c02e50c0d7fdadbef80e58c83f992cd4025b524a159a98febce6a\
        81d897b117e82100";
    const KNOWN_TIANO: &str = "53000000b500000000485492d91b58f1c09f9aec700863419318d91420bf9281c71b69c34f\
        1c0012366481bb937e82e6174a181763376cbe01728606bfed6df7c072c641fcc966a012da9250acd4c7f5e735\
        40ec4bd88bf4108000";

    fn known_text() -> Vec<u8> {
        let mut t = b"The quick brown fox jumps over the lazy dog. ".repeat(3);
        t.extend_from_slice(b"EFI option ROM, EFI option ROM, GOP driver!\x00\x01\x02");
        t
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
            .collect()
    }

    /// MSB-first bit writer for hand-made streams.
    #[derive(Default)]
    struct Bits {
        bytes: Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl Bits {
        fn put(&mut self, width: u32, value: u32) {
            assert!(
                width <= 32 && (width == 32 || value < (1 << width)),
                "{value} in {width} bits"
            );
            self.acc = (self.acc << width) | u64::from(value);
            self.n += width;
            while self.n >= 8 {
                self.n -= 8;
                self.bytes.push((self.acc >> self.n) as u8);
            }
        }
        fn bit_len(&self) -> usize {
            self.bytes.len() * 8 + self.n as usize
        }
        fn finish(mut self) -> Vec<u8> {
            if self.n > 0 {
                self.put(8 - self.n, 0);
            }
            self.bytes
        }
    }

    fn stream(body: &[u8], original: u32) -> Vec<u8> {
        let mut s = (body.len() as u32).to_le_bytes().to_vec();
        s.extend_from_slice(&original.to_le_bytes());
        s.extend_from_slice(body);
        s
    }

    /// Canonical codes for `lens` (the assignment the format uses), as (code, length).
    fn canonical(lens: &[u8]) -> Vec<(u32, u32)> {
        let mut count = [0u32; 17];
        for &l in lens {
            count[usize::from(l)] += 1;
        }
        count[0] = 0;
        let mut next = [0u32; 17];
        for l in 1..17 {
            next[l] = (next[l - 1] + count[l - 1]) << 1;
        }
        lens.iter()
            .map(|&l| {
                let l = usize::from(l);
                let c = next[l];
                next[l] += 1;
                (c, l as u32)
            })
            .collect()
    }

    /// Writes a PT-style length list: 3-bit lengths below 7, unary extension above.
    fn put_pt_lengths(w: &mut Bits, lens: &[u8], nbit: u32, special: Option<usize>) {
        w.put(nbit, lens.len() as u32);
        let mut i = 0;
        while i < lens.len() {
            let l = u32::from(lens[i]);
            if l < 7 {
                w.put(3, l);
            } else {
                w.put(3, 7);
                for _ in 7..l {
                    w.put(1, 1);
                }
                w.put(1, 0);
            }
            i += 1;
            if special == Some(i) {
                let mut z = 0;
                while z < 3 && i < lens.len() && lens[i] == 0 {
                    z += 1;
                    i += 1;
                }
                w.put(2, z);
            }
        }
    }

    /// A tiny encoder with caller-chosen complete codes, to reach every decoder path on purpose.
    struct Enc {
        w: Bits,
        c_codes: Vec<(u32, u32)>,
        p_codes: Vec<(u32, u32)>,
    }

    /// 19 extra-table symbols: 13 of length 4 and 6 of length 5 (a complete code).
    fn t_lens() -> Vec<u8> {
        (0..NT).map(|i| if i < 13 { 4 } else { 5 }).collect()
    }

    impl Enc {
        fn block(mut w: Bits, size: u32, c_lens: &[u8], p_lens: &[u8], pbit: u32) -> Enc {
            w.put(16, size);
            let t = t_lens();
            put_pt_lengths(&mut w, &t, TBIT, Some(T_SPECIAL));
            let t_codes = canonical(&t);
            w.put(CBIT, c_lens.len() as u32);
            for &l in c_lens {
                let sym = if l == 0 { 0 } else { usize::from(l) + 2 };
                let (code, len) = t_codes[sym];
                w.put(len, code);
            }
            put_pt_lengths(&mut w, p_lens, pbit, None);
            Enc {
                w,
                c_codes: canonical(c_lens),
                p_codes: canonical(p_lens),
            }
        }
        fn literal(&mut self, b: u8) {
            let (code, len) = self.c_codes[usize::from(b)];
            assert!(len > 0, "literal {b} has no code");
            self.w.put(len, code);
        }
        fn matched(&mut self, len: usize, distance: usize) {
            let (code, l) = self.c_codes[len - MIN_MATCH + 256];
            assert!(l > 0, "length {len} has no code");
            self.w.put(l, code);
            let pos = distance - 1;
            let class = if pos <= 1 {
                pos
            } else {
                (usize::BITS - pos.leading_zeros()) as usize
            };
            let (code, l) = self.p_codes[class];
            assert!(l > 0, "position class {class} has no code");
            self.w.put(l, code);
            if class > 1 {
                let extra = class as u32 - 1;
                self.w.put(extra, (pos - (1 << extra)) as u32);
            }
        }
    }

    /// Char/length lengths giving every literal and match length a code: all 510 symbols, 2 of
    /// length 8 and 508 of length 9 (2/256 + 508/512 = 1).
    fn flat_c_lens() -> Vec<u8> {
        (0..NC).map(|i| if i < 2 { 8 } else { 9 }).collect()
    }

    /// Position lengths for `classes` classes forming a complete code.
    fn flat_p_lens(classes: usize) -> Vec<u8> {
        // A chain 1, 2, ..., k-1, k-1 is complete for any k >= 2.
        (0..classes).map(|i| (i + 1).min(classes - 1) as u8).collect()
    }

    /// One block with single-symbol tables: `size` zero-bit symbols all equal to `c_sym`.
    fn single_block(w: &mut Bits, size: u32, t_sym: u32, c_sym: u32, p_sym: u32, pbit: u32) {
        w.put(16, size);
        w.put(TBIT, 0);
        w.put(TBIT, t_sym);
        w.put(CBIT, 0);
        w.put(CBIT, c_sym);
        w.put(pbit, 0);
        w.put(pbit, p_sym);
    }

    #[test]
    fn empty_input_is_refused_at_offset_0() {
        let e = decompress(&[], 1 << 20).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.what.contains("shorter than the 8-byte"), "{e}");
        assert_eq!(header(&[1, 2, 3]).unwrap_err().offset, 3);
    }

    #[test]
    fn header_only_with_original_size_zero_is_empty_output() {
        assert_eq!(header(&[0; 8]).unwrap(), (0, 0));
        assert_eq!(decompress(&[0; 8], 0).unwrap(), Vec::<u8>::new());
        // A body is allowed and unread when nothing is to be produced.
        assert_eq!(decompress(&stream(&[0xff; 5], 0), 0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn header_only_claiming_data_is_truncated() {
        let e = decompress(&stream(&[], 10), 100).unwrap_err();
        assert_eq!(e.offset, 8, "{e}");
        assert!(e.what.contains("ended while symbols were still needed"), "{e}");
    }

    #[test]
    fn original_size_over_limit_is_refused_before_allocating() {
        let e = decompress(&stream(&[], 1001), 1000).unwrap_err();
        assert_eq!(
            (e.offset, e.what.as_str()),
            (4, "original size 1001 is over the limit of 1000 bytes")
        );
        // 4 GiB claimed: refused, not allocated.
        let e = decompress(&stream(&[0; 4], u32::MAX), 1 << 24).unwrap_err();
        assert_eq!(e.offset, 4);
        assert_eq!(header(&stream(&[], u32::MAX)).unwrap(), (0, u32::MAX));
    }

    #[test]
    fn compressed_size_past_the_input_is_refused() {
        let mut s = unhex(KNOWN_EFI);
        s.truncate(40);
        let e = decompress(&s, 1 << 20).unwrap_err();
        assert_eq!(e.offset, 40);
        assert!(
            e.what
                .contains("declared compressed size 82 runs past the end of the 40-byte input"),
            "{e}"
        );
        let e = decompress(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0], 10).unwrap_err();
        assert_eq!(e.offset, 8);
    }

    #[test]
    fn known_edk2_vectors_decode() {
        let text = known_text();
        assert_eq!(decompress(&unhex(KNOWN_EFI), 1 << 20).unwrap(), text);
        assert_eq!(
            decompress_variant(&unhex(KNOWN_TIANO), Variant::Tiano, 1 << 20).unwrap(),
            text
        );
        // Bytes after the declared size are ignored, as EDK2 ignores them.
        let mut padded = unhex(KNOWN_EFI);
        padded.extend_from_slice(&[0xa5; 64]);
        assert_eq!(decompress(&padded, 1 << 20).unwrap(), text);
        // The variants differ in the width of the position table's count: the wrong one is wrong.
        assert_ne!(
            decompress_variant(&unhex(KNOWN_TIANO), Variant::Efi, 1 << 20).ok(),
            Some(text.clone())
        );
        assert_ne!(
            decompress_variant(&unhex(KNOWN_EFI), Variant::Tiano, 1 << 20).ok(),
            Some(text)
        );
    }

    #[test]
    fn truncated_real_stream_names_where_data_ended() {
        let full = unhex(KNOWN_EFI);
        for keep in [10usize, 30, 60] {
            let body = &full[8..8 + keep];
            let e = decompress(&stream(body, 181), 1 << 20).unwrap_err();
            assert_eq!(e.offset, 8 + keep, "{keep}: {e}");
            assert!(e.what.contains("ended while symbols were still needed"), "{e}");
        }
    }

    #[test]
    fn single_symbol_tables_decode_zero_bit_symbols() {
        let mut w = Bits::default();
        single_block(&mut w, 5, 0, u32::from(b'A'), 0, 4);
        assert_eq!(decompress(&stream(&w.finish(), 5), 100).unwrap(), b"AAAAA");
    }

    #[test]
    fn block_size_zero_means_65536_symbols() {
        let mut w = Bits::default();
        single_block(&mut w, 0, 0, u32::from(b'z'), 0, 4);
        single_block(&mut w, 1, 0, u32::from(b'!'), 0, 4);
        let out = decompress(&stream(&w.finish(), 65537), 1 << 20).unwrap();
        assert_eq!(out.len(), 65537);
        assert!(out[..65536].iter().all(|&b| b == b'z'));
        assert_eq!(out[65536], b'!');
    }

    #[test]
    fn match_at_the_start_is_a_bad_distance() {
        let mut w = Bits::default();
        single_block(&mut w, 1, 0, 256, 0, 4);
        let e = decompress(&stream(&w.finish(), 3), 100).unwrap_err();
        assert_eq!(
            e.what,
            "match distance 1 reaches before the start of the output (0 bytes so far)"
        );
        // The header's bits run 16+5+5+9+9+4+4 = 52; the zero-bit symbol starts right after them.
        assert_eq!(e.offset, 8 + 52 / 8);
    }

    #[test]
    fn bad_distance_after_some_output() {
        let mut enc = Enc::block(Bits::default(), 3, &flat_c_lens(), &flat_p_lens(14), 4);
        enc.literal(b'a');
        enc.literal(b'b');
        let before = enc.w.bit_len();
        enc.matched(3, 3);
        let e = decompress(&stream(&enc.w.finish(), 5), 100).unwrap_err();
        assert_eq!(
            e.what,
            "match distance 3 reaches before the start of the output (2 bytes so far)"
        );
        assert_eq!(e.offset, 8 + before / 8);
    }

    #[test]
    fn literals_matches_and_long_codes_decode() {
        // C: a chain of lengths 1..=16 over a few symbols makes codes longer than the 12-bit probe.
        let mut c = vec![0u8; NC];
        let chain = [
            b'x', b'y', b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i', b'j',
        ];
        for (i, &s) in chain.iter().enumerate() {
            c[usize::from(s)] = i as u8 + 1; // 1..=12
        }
        // Match lengths 3, 4, 256 and 5 get 13, 14, 15, 16, and length 6 another 16.
        for (i, len) in [3usize, 4, 256, 5, 6].into_iter().enumerate() {
            c[len - MIN_MATCH + 256] = (13 + i).min(16) as u8;
        }
        // P: 18 classes (Tiano counts them in 5 bits), a chain 1..=14 then four of 16, so classes
        // past the 8-bit probe take the long path.
        let p: Vec<u8> = (1..=14).chain([16; 4]).collect();
        let mut enc = Enc::block(Bits::default(), 0xffff, &c, &p, 5);
        let mut want = Vec::new();
        for &s in b"abcdefghijxy" {
            enc.literal(s);
            want.push(s);
        }
        for (len, distance) in [(3, 1), (4, 2), (5, 12), (6, 5), (256, 3), (256, 280), (5, 1)] {
            enc.matched(len, distance);
            for _ in 0..len {
                want.push(want[want.len() - distance]);
            }
        }
        // A far match: fill beyond 2^17 bytes with overlapping copies, then reach back 100000.
        while want.len() < 140_000 {
            enc.matched(256, 7);
            for _ in 0..256 {
                want.push(want[want.len() - 7]);
            }
        }
        enc.literal(b'j');
        want.push(b'j');
        enc.matched(6, 100_000);
        for _ in 0..6 {
            want.push(want[want.len() - 100_000]);
        }
        let s = stream(&enc.w.finish(), want.len() as u32);
        assert_eq!(decompress_variant(&s, Variant::Tiano, 1 << 20).unwrap(), want);
    }

    #[test]
    fn match_past_the_original_size_is_cut_there() {
        let mut enc = Enc::block(Bits::default(), 10, &flat_c_lens(), &flat_p_lens(14), 4);
        enc.literal(b'q');
        enc.matched(256, 1);
        assert_eq!(
            decompress(&stream(&enc.w.finish(), 10), 100).unwrap(),
            b"qqqqqqqqqq"
        );
    }

    #[test]
    fn multiple_blocks_with_their_own_tables() {
        let mut enc = Enc::block(Bits::default(), 2, &flat_c_lens(), &flat_p_lens(14), 4);
        enc.literal(b'h');
        enc.literal(b'i');
        let mut w = enc.w;
        single_block(&mut w, 3, 0, u32::from(b'!'), 0, 4);
        let mut enc2 = Enc::block(w, 1, &flat_c_lens(), &flat_p_lens(3), 4);
        enc2.matched(5, 4);
        assert_eq!(
            decompress(&stream(&enc2.w.finish(), 10), 100).unwrap(),
            b"hi!!!i!!!i"
        );
    }

    /// A stream whose symbols are one bit each ('\0' for 0, '\x01' for 1): extra table a single
    /// symbol 3 (length 1), so the two char/length lengths read are both 1.
    fn one_bit_stream(payload_bits: &[u32]) -> (Vec<u8>, usize) {
        let mut w = Bits::default();
        w.put(16, payload_bits.len() as u32);
        w.put(TBIT, 0);
        w.put(TBIT, 3);
        w.put(CBIT, 2);
        w.put(4, 0);
        w.put(4, 0);
        let header_bits = w.bit_len();
        for &b in payload_bits {
            w.put(1, b);
        }
        (w.finish(), header_bits)
    }

    #[test]
    fn implied_zero_padding_is_accepted_up_to_the_slack() {
        let mut bits = vec![1, 0, 1, 1];
        bits.resize(4 + 8 * 12, 0);
        let want: Vec<u8> = bits.iter().map(|&b| b as u8).collect();
        let (body, header_bits) = one_bit_stream(&bits);
        let total = body.len();
        assert!(
            total * 8 >= header_bits + bits.len() && total > 12,
            "layout assumption"
        );
        // Drop trailing zero bytes: decoding is unchanged up to the slack, then refused.
        for cut in 0..=10 {
            let s = stream(&body[..total - cut], want.len() as u32);
            let needed_past_end = (header_bits + bits.len()).saturating_sub((total - cut) * 8);
            let r = decompress(&s, 1 << 10);
            if needed_past_end <= END_SLACK_BYTES * 8 {
                assert_eq!(r.unwrap(), want, "cut {cut}");
            } else {
                let e = r.unwrap_err();
                assert_eq!(e.offset, 8 + total - cut, "cut {cut}: {e}");
                assert!(e.what.contains("ended while symbols were still needed"), "{e}");
            }
        }
    }

    #[test]
    fn code_length_over_16_is_refused() {
        let mut w = Bits::default();
        w.put(16, 1);
        w.put(TBIT, 1);
        w.put(3, 7);
        for _ in 0..10 {
            w.put(1, 1); // 7 + 10 = 17
        }
        w.put(1, 0);
        let e = decompress(&stream(&w.finish(), 1), 100).unwrap_err();
        assert_eq!(e.what, "code length 17 for symbol 0 is over 16");
        assert_eq!(e.offset, 8 + 21 / 8);
    }

    #[test]
    fn incomplete_and_over_subscribed_tables_are_refused() {
        let t_table = |lens: &[u8]| {
            let mut w = Bits::default();
            w.put(16, 1);
            put_pt_lengths(&mut w, lens, TBIT, Some(T_SPECIAL));
            w.put(32, 0);
            decompress(&stream(&w.finish(), 1), 100).unwrap_err()
        };
        let e = t_table(&[1]);
        assert_eq!(
            e.what,
            "extra table: incomplete code table (lengths fill 32768/65536 of the code space)"
        );
        assert_eq!(e.offset, 8 + 2);
        let e = t_table(&[1, 1, 1]);
        assert_eq!(
            e.what,
            "extra table: over-subscribed code table (lengths fill 98304/65536 of the code space)"
        );
        let e = t_table(&[0, 0, 0, 0, 0]);
        assert_eq!(e.what, "extra table: code table gives no symbol a code");

        // A position table that is incomplete, after valid extra and char/length tables.
        let mut w = Bits::default();
        single_block(&mut w, 1, 0, 1, 0, 4);
        let mut w2 = Bits::default();
        w2.put(16, 1);
        w2.put(TBIT, 0);
        w2.put(TBIT, 0);
        w2.put(CBIT, 0);
        w2.put(CBIT, 1);
        let at = w2.bit_len();
        put_pt_lengths(&mut w2, &[2, 2, 2], 4, None);
        let e = decompress(&stream(&w2.finish(), 1), 100).unwrap_err();
        assert_eq!(
            e.what,
            "position table: incomplete code table (lengths fill 49152/65536 of the code space)"
        );
        assert_eq!(e.offset, 8 + at / 8);
        // The same block with single-symbol tables is fine.
        assert_eq!(decompress(&stream(&w.finish(), 1), 100).unwrap(), [1]);
    }

    #[test]
    fn single_symbols_outside_their_alphabet_are_refused() {
        let run = |t: u32, c: u32, p: u32, variant: Variant| {
            let mut w = Bits::default();
            single_block(&mut w, 1, t, c, p, variant.pbit());
            decompress_variant(&stream(&w.finish(), 1), variant, 100)
        };
        assert_eq!(
            run(0, 510, 0, Variant::Efi).unwrap_err().what,
            "char/length table names symbol 510, beyond its 510"
        );
        assert_eq!(
            run(19, 0, 0, Variant::Efi).unwrap_err().what,
            "extra table names symbol 19, beyond its 19"
        );
        assert_eq!(
            run(0, 0, 31, Variant::Tiano).unwrap_err().what,
            "position table names symbol 31, beyond its 31"
        );
        // The largest in-range symbols are fine: a literal 0xff, position class 30 unused.
        assert_eq!(run(18, 255, 30, Variant::Tiano).unwrap(), [0xff]);
    }

    #[test]
    fn corrupted_extra_code_in_char_lengths_is_refused() {
        // An extra table whose only codes are symbols 0 and 1 (zero runs), then a char/length
        // table built only of zeros: no symbol gets a code.
        let mut w = Bits::default();
        w.put(16, 1);
        put_pt_lengths(&mut w, &[1, 1], TBIT, Some(T_SPECIAL));
        let at = w.bit_len();
        w.put(CBIT, 4);
        for _ in 0..4 {
            w.put(1, 0);
        }
        w.put(32, 0);
        let e = decompress(&stream(&w.finish(), 1), 100).unwrap_err();
        assert_eq!(e.what, "char/length table: code table gives no symbol a code");
        assert_eq!(e.offset, 8 + at / 8);
    }

    #[test]
    fn error_display_names_the_offset() {
        let e = DecompressError::new("bad thing", 0x1234);
        assert_eq!(e.to_string(), "bad thing at stream offset 0x1234");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

            /// Arbitrary bytes after a header of any sizes: Ok or Err, never a panic, never more
            /// than the original size.
            #[test]
            fn random_streams_never_panic(
                body in proptest::collection::vec(any::<u8>(), 0..600),
                original in 0u32..200_000,
                tiano in any::<bool>(),
            ) {
                let s = stream(&body, original);
                let variant = if tiano { Variant::Tiano } else { Variant::Efi };
                if let Ok(out) = decompress_variant(&s, variant, 1 << 18) {
                    prop_assert_eq!(out.len(), original as usize);
                }
            }

            /// Real EDK2 streams with a few bytes flipped: never a panic.
            #[test]
            fn mutated_edk2_streams_never_panic(
                flips in proptest::collection::vec((0usize..90, any::<u8>()), 1..6),
                tiano in any::<bool>(),
            ) {
                let (hex, variant) = if tiano { (KNOWN_TIANO, Variant::Tiano) } else { (KNOWN_EFI, Variant::Efi) };
                let mut s = unhex(hex);
                for (at, x) in flips {
                    let i = 8 + at % (s.len() - 8);
                    s[i] ^= x;
                }
                if let Ok(out) = decompress_variant(&s, variant, 1 << 16) {
                    prop_assert_eq!(out.len(), 181);
                }
            }

            /// Any sequence of literals and in-range matches, encoded with the flat tables,
            /// decodes to what it means.
            #[test]
            fn encoded_ops_round_trip(
                ops in proptest::collection::vec((any::<bool>(), any::<u8>(), 3usize..=256, 1usize..=8192), 1..300),
            ) {
                let mut enc = Enc::block(Bits::default(), ops.len() as u32, &flat_c_lens(), &flat_p_lens(14), 4);
                let mut want: Vec<u8> = Vec::new();
                for (is_match, byte, len, distance) in ops {
                    if is_match && distance <= want.len() {
                        enc.matched(len, distance);
                        for _ in 0..len {
                            want.push(want[want.len() - distance]);
                        }
                    } else {
                        enc.literal(byte);
                        want.push(byte);
                    }
                }
                let s = stream(&enc.w.finish(), want.len() as u32);
                prop_assert_eq!(decompress(&s, 1 << 20).unwrap(), want);
            }
        }
    }
}
