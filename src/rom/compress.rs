//! The encoder of the UEFI compression algorithm, EFI variant (PBIT 4, 8 KiB window): what
//! `rom build --compress` stores in an EFI image with compression type 1.
//!
//! The stream is the one [`super::decompress`] reads (and EDK2's `UefiDecompressLib`, which is
//! what firmware runs): a header of two little-endian `u32` (compressed size, original size),
//! then MSB-first blocks, each a 16-bit symbol count, the code lengths of the "extra" table
//! (which codes the char/length lengths), the char/length lengths, the position lengths, and the
//! symbols. This encoder is written from the format, not from EDK2's `EfiCompress.c`: matches
//! come from hash chains over the 8 KiB window with one step of lazy evaluation (a match is
//! deferred when the next position starts a longer one), and each block gets its own
//! length-limited canonical Huffman codes.

use std::collections::BinaryHeap;

use std::cmp::Reverse;

/// Char/length alphabet: 256 literals plus match lengths 3..=256.
const NC: usize = 510;
const CBIT: u32 = 9;
/// The "extra" alphabet that codes char/length code lengths.
const NT: usize = 19;
const TBIT: u32 = 5;
/// Position classes for an 8 KiB window: 0..=13.
const NP: usize = 14;
const PBIT: u32 = 4;
/// After the third extra-table length, two bits count the zero lengths that follow.
const T_SPECIAL: usize = 3;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 256;
const WINDOW: usize = 1 << 13;
const MAX_CODE_LEN: u8 = 16;
/// Symbols per block at most, just under the 16-bit count's limit; [`send_split`] cuts a block in
/// halves where that comes out smaller.
const BLOCK_SYMBOLS: usize = 0xFFF0;

/// Blocks are not split below this many symbols.
const MIN_SPLIT: usize = 1024;

const HASH_BITS: u32 = 15;
/// How many earlier positions a match search visits at most.
const MAX_CHAIN: usize = 512;
/// A match this long is taken at once, without looking one position ahead.
const LAZY_CUTOFF: usize = 64;

/// Why an input cannot be compressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    #[error("{size} bytes is more than the format's 32-bit original size field can hold")]
    TooLarge { size: usize },
}

/// Compress `input` into an EFI-compressed stream (header included).
pub fn compress(input: &[u8]) -> Result<Vec<u8>, CompressError> {
    let original = u32::try_from(input.len()).map_err(|_| CompressError::TooLarge { size: input.len() })?;
    let mut w = BitWriter::with_capacity(input.len() / 2 + 64);
    // The header is patched once the compressed size is known.
    w.out.extend_from_slice(&[0; 8]);
    let mut block = Vec::with_capacity(input.len() / 2 + 16);
    let mut m = Matcher::new(input);
    let mut i = 0;
    let mut cur = m.find(i);
    while i < input.len() {
        if cur.0 < MIN_MATCH {
            block.push(Symbol::literal(input[i]));
            i += 1;
            cur = m.find(i);
        } else {
            let next = if cur.0 < LAZY_CUTOFF {
                m.find(i + 1)
            } else {
                (0, 0)
            };
            if next.0 > cur.0 {
                block.push(Symbol::literal(input[i]));
                i += 1;
                cur = next;
            } else {
                block.push(Symbol::matched(cur.0, cur.1));
                i += cur.0;
                cur = m.find(i);
            }
        }
    }
    for chunk in block.chunks(BLOCK_SYMBOLS) {
        send_split(&mut w, chunk);
    }
    w.flush();
    let mut out = w.out;
    let compressed =
        u32::try_from(out.len() - 8).map_err(|_| CompressError::TooLarge { size: input.len() })?;
    out[0..4].copy_from_slice(&compressed.to_le_bytes());
    out[4..8].copy_from_slice(&original.to_le_bytes());
    Ok(out)
}

/// One coded symbol: a char/length code and, for matches, the position value (distance - 1).
#[derive(Clone, Copy)]
struct Symbol {
    code: u16,
    pos: u16,
}

impl Symbol {
    fn literal(b: u8) -> Self {
        Symbol {
            code: u16::from(b),
            pos: 0,
        }
    }

    fn matched(len: usize, distance: usize) -> Self {
        // len is 3..=256 and distance 1..=8192: both fit in u16 by construction.
        Symbol {
            code: (len + 256 - MIN_MATCH) as u16,
            pos: (distance - 1) as u16,
        }
    }
}

/// Hash chains over the window. `find(i)` first inserts every position before `i`, then returns
/// the longest (nearest on ties) match at `i` as (length, distance), or (0, 0).
struct Matcher<'a> {
    data: &'a [u8],
    head: Vec<u32>,
    prev: Vec<u32>,
    shift: u32,
    inserted: usize,
}

impl<'a> Matcher<'a> {
    fn new(data: &'a [u8]) -> Self {
        // Small inputs get small tables: zeroing 160 KiB dominated compressing a short driver.
        // The chain array never needs more slots than there are positions.
        let hash_bits = (usize::BITS - data.len().leading_zeros()).clamp(8, HASH_BITS);
        Matcher {
            data,
            // Positions are stored plus one, so 0 means "none".
            head: vec![0; 1 << hash_bits],
            prev: vec![0; data.len().next_power_of_two().clamp(1, WINDOW)],
            shift: 32 - hash_bits,
            inserted: 0,
        }
    }

    fn hash(&self, i: usize) -> usize {
        let d = self.data;
        let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8 | u32::from(d[i + 2]) << 16;
        (v.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    fn insert_to(&mut self, end: usize) {
        let last = self.data.len().saturating_sub(MIN_MATCH - 1);
        let end = end.min(last);
        while self.inserted < end {
            let i = self.inserted;
            let h = self.hash(i);
            let slot = i & (self.prev.len() - 1);
            self.prev[slot] = self.head[h];
            self.head[h] = (i + 1) as u32;
            self.inserted += 1;
        }
        self.inserted = self.inserted.max(end);
    }

    fn find(&mut self, i: usize) -> (usize, usize) {
        self.insert_to(i);
        let d = self.data;
        let max = MAX_MATCH.min(d.len().saturating_sub(i));
        if max < MIN_MATCH {
            return (0, 0);
        }
        let mut cand = self.head[self.hash(i)] as usize;
        let (mut best_len, mut best_dist) = (0, 0);
        let mut chain = MAX_CHAIN;
        while cand != 0 && chain > 0 {
            let c = cand - 1;
            let dist = i - c;
            if dist > WINDOW {
                break;
            }
            // Only a candidate that beats the best so far at its last byte can be longer.
            if d[c + best_len.min(max - 1)] == d[i + best_len.min(max - 1)] {
                let len = match_len(d, c, i, max);
                if len > best_len {
                    best_len = len;
                    best_dist = dist;
                    if len == max {
                        break;
                    }
                }
            }
            let next = self.prev[c & (self.prev.len() - 1)] as usize;
            // An older slot overwritten by a newer position ends the chain.
            if next >= cand {
                break;
            }
            cand = next;
            chain -= 1;
        }
        if best_len >= MIN_MATCH {
            (best_len, best_dist)
        } else {
            (0, 0)
        }
    }
}

/// How many bytes at `a` and `b` (a < b) agree, up to `max`.
fn match_len(d: &[u8], a: usize, b: usize, max: usize) -> usize {
    let mut n = 0;
    while n + 8 <= max {
        let x = u64::from_le_bytes(d[a + n..a + n + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(d[b + n..b + n + 8].try_into().unwrap_or([0; 8]));
        let diff = x ^ y;
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && d[a + n] == d[b + n] {
        n += 1;
    }
    n
}

/// Most-significant-bit-first bit output.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    fn with_capacity(n: usize) -> Self {
        BitWriter {
            out: Vec::with_capacity(n),
            acc: 0,
            bits: 0,
        }
    }

    /// Append the low `n` (at most 32) bits of `v`, high bit first.
    fn put(&mut self, n: u32, v: u32) {
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | u64::from(v & (u32::MAX >> (32 - n)));
        self.bits += n;
        if self.bits >= 32 {
            self.bits -= 32;
            let word = (self.acc >> self.bits) as u32;
            self.out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// Pad the last byte with zero bits.
    fn flush(&mut self) {
        while self.bits >= 8 {
            self.bits -= 8;
            self.out.push((self.acc >> self.bits) as u8);
        }
        if self.bits > 0 {
            self.out.push((self.acc << (8 - self.bits)) as u8);
            self.bits = 0;
        }
    }
}

/// A canonical prefix code: lengths and codes per symbol.
struct Code {
    len: Vec<u8>,
    code: Vec<u16>,
}

impl Code {
    fn put(&self, w: &mut BitWriter, sym: usize) {
        w.put(u32::from(self.len[sym]), u32::from(self.code[sym]));
    }
}

/// Huffman code lengths for `freq`, at most [`MAX_CODE_LEN`]. Returns the single used symbol
/// instead when fewer than two symbols occur (the format writes such a table as a count of 0
/// and the symbol; its code is empty).
fn code_for(freq: &[u32]) -> Result<Code, usize> {
    let used: Vec<usize> = (0..freq.len()).filter(|&s| freq[s] > 0).collect();
    if used.len() < 2 {
        return Err(used.first().copied().unwrap_or(0));
    }
    let mut f: Vec<u64> = freq.iter().map(|&x| u64::from(x)).collect();
    let len = loop {
        let len = huffman_lengths(&f);
        if len.iter().all(|&l| l <= MAX_CODE_LEN) {
            break len;
        }
        // Flatten the distribution and build again: converges, since equal weights give a
        // balanced tree of depth log2(symbols) <= 9.
        for x in f.iter_mut().filter(|x| **x > 0) {
            *x = (*x >> 1) + 1;
        }
    };
    let mut count = [0u16; 18];
    for &l in &len {
        count[usize::from(l)] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 18];
    let mut c = 0u32;
    for l in 1..=usize::from(MAX_CODE_LEN) {
        c = (c + u32::from(count[l - 1])) << 1;
        next[l] = c as u16;
    }
    let mut code = vec![0u16; freq.len()];
    for (s, &l) in len.iter().enumerate() {
        if l > 0 {
            code[s] = next[usize::from(l)];
            next[usize::from(l)] = next[usize::from(l)].wrapping_add(1);
        }
    }
    Ok(Code { len, code })
}

/// Plain Huffman lengths (unbounded) for the nonzero weights, via a min-heap.
fn huffman_lengths(f: &[u64]) -> Vec<u8> {
    let n = f.len();
    // Nodes 0..n are leaves; internal nodes follow. parent[] links each node to its parent.
    let mut parent = vec![usize::MAX; 2 * n];
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> =
        (0..n).filter(|&s| f[s] > 0).map(|s| Reverse((f[s], s))).collect();
    let mut next = n;
    while heap.len() > 1 {
        let (Some(Reverse((fa, a))), Some(Reverse((fb, b)))) = (heap.pop(), heap.pop()) else {
            break;
        };
        parent[a] = next;
        parent[b] = next;
        heap.push(Reverse((fa + fb, next)));
        next += 1;
    }
    // Depths: internal nodes were created in order, so each parent index is above its children;
    // walk from the root (highest index) down.
    let mut depth = vec![0u32; next];
    for node in (0..next).rev() {
        if parent[node] != usize::MAX {
            depth[node] = depth[parent[node]] + 1;
        }
    }
    (0..n)
        .map(|s| if f[s] > 0 { depth[s].min(255) as u8 } else { 0 })
        .collect()
}

/// The extra-table symbols that code the char/length lengths `clen` (trailing zeros dropped):
/// 0 = one zero, 1 = 3..=18 zeros (4 more bits), 2 = 20.. zeros (9 more bits), k+2 = length k.
fn c_len_runs(clen: &[u8], mut emit: impl FnMut(usize, u32, u32)) {
    let n = clen.len();
    let mut i = 0;
    while i < n {
        let k = clen[i];
        i += 1;
        if k == 0 {
            let mut run = 1;
            while i < n && clen[i] == 0 {
                i += 1;
                run += 1;
            }
            match run {
                1..=2 => (0..run).for_each(|_| emit(0, 0, 0)),
                3..=18 => emit(1, 4, run - 3),
                19 => {
                    emit(0, 0, 0);
                    emit(1, 4, 15);
                }
                _ => emit(2, CBIT, run - 20),
            }
        } else {
            emit(usize::from(k) + 2, 0, 0);
        }
    }
}

fn trimmed(len: &[u8]) -> &[u8] {
    let n = len.iter().rposition(|&l| l != 0).map_or(0, |p| p + 1);
    &len[..n]
}

/// Extra-table or position-table lengths: a count in `nbit` bits, then 3 bits per length (7 and
/// up continue in unary), and after index `special` two bits of zero-run.
fn write_pt_len(w: &mut BitWriter, len: &[u8], nbit: u32, special: Option<usize>) {
    let len = trimmed(len);
    let n = len.len();
    w.put(nbit, n as u32);
    let mut i = 0;
    while i < n {
        let k = u32::from(len[i]);
        i += 1;
        if k <= 6 {
            w.put(3, k);
        } else {
            w.put(k - 3, (1 << (k - 3)) - 2);
        }
        if Some(i) == special {
            let start = i;
            while i < n.min(6) && len[i] == 0 {
                i += 1;
            }
            w.put(2, (i - start) as u32);
        }
    }
}

/// Sends `block` whole, or as two halves (each split again the same way) when that is smaller:
/// data whose statistics change along the way (code, then tables, then strings) gains from its
/// own codes per part, uniform data from one set of tables.
fn send_split(w: &mut BitWriter, block: &[Symbol]) {
    if block.len() >= 2 * MIN_SPLIT {
        // The best of three cut points, against sending it whole.
        let whole = block_bits(block);
        let best = [block.len() / 4, block.len() / 2, block.len() * 3 / 4]
            .into_iter()
            .filter(|&cut| cut >= MIN_SPLIT / 2 && block.len() - cut >= MIN_SPLIT / 2)
            .map(|cut| (block_bits(&block[..cut]) + block_bits(&block[cut..]), cut))
            .min();
        if let Some((_, cut)) = best.filter(|&(bits, _)| bits < whole) {
            let (left, right) = block.split_at(cut);
            send_split(w, left);
            send_split(w, right);
            return;
        }
    }
    send_block(w, block);
}

/// The exact size in bits of `block` sent as one block: its tables, written to a scratch
/// writer, plus each symbol's code length (and extra position bits) times its frequency.
fn block_bits(block: &[Symbol]) -> usize {
    let (cfreq, pfreq) = frequencies(block);
    let mut w = BitWriter::with_capacity(1024);
    w.put(16, 0);
    let (c, p) = write_tables(&mut w, &cfreq, &pfreq);
    let mut bits = w.out.len() * 8 + w.bits as usize;
    if let Some(c) = &c {
        bits += cfreq
            .iter()
            .zip(&c.len)
            .map(|(&f, &l)| f as usize * usize::from(l))
            .sum::<usize>();
    }
    for (class, &f) in pfreq.iter().enumerate() {
        let code = p.as_ref().map_or(0, |p| usize::from(p.len[class]));
        bits += f as usize * (code + class.saturating_sub(1));
    }
    bits
}

/// Symbol frequencies of a block: char/length codes and position classes.
fn frequencies(block: &[Symbol]) -> ([u32; NC], [u32; NP]) {
    let mut cfreq = [0u32; NC];
    let mut pfreq = [0u32; NP];
    for s in block {
        cfreq[usize::from(s.code)] += 1;
        if usize::from(s.code) >= 256 {
            pfreq[pos_class(s.pos)] += 1;
        }
    }
    (cfreq, pfreq)
}

fn send_block(w: &mut BitWriter, block: &[Symbol]) {
    let (cfreq, pfreq) = frequencies(block);
    w.put(16, block.len() as u32);
    let (c, p) = write_tables(w, &cfreq, &pfreq);
    for s in block {
        if let Some(c) = &c {
            c.put(w, usize::from(s.code));
        }
        if usize::from(s.code) >= 256 {
            let class = pos_class(s.pos);
            if let Some(p) = &p {
                p.put(w, class);
            }
            if class > 1 {
                w.put(class as u32 - 1, u32::from(s.pos));
            }
        }
    }
}

/// Builds the block's codes and writes its three tables; `None` for a one-symbol table (whose
/// symbol is coded in zero bits).
fn write_tables(w: &mut BitWriter, cfreq: &[u32; NC], pfreq: &[u32; NP]) -> (Option<Code>, Option<Code>) {
    let c = match code_for(cfreq) {
        Ok(c) => {
            let clen = trimmed(&c.len);
            let mut tfreq = [0u32; NT];
            c_len_runs(clen, |t, _, _| tfreq[t] += 1);
            match code_for(&tfreq) {
                Ok(t) => {
                    write_pt_len(w, &t.len, TBIT, Some(T_SPECIAL));
                    w.put(CBIT, clen.len() as u32);
                    c_len_runs(clen, |sym, bits, v| {
                        t.put(w, sym);
                        w.put(bits, v);
                    });
                }
                Err(only) => {
                    w.put(TBIT, 0);
                    w.put(TBIT, only as u32);
                    w.put(CBIT, clen.len() as u32);
                    // The one extra symbol has an empty code: only its extra bits are written.
                    c_len_runs(clen, |_, bits, v| w.put(bits, v));
                }
            }
            Some(c)
        }
        Err(only) => {
            w.put(TBIT, 0);
            w.put(TBIT, 0);
            w.put(CBIT, 0);
            w.put(CBIT, only as u32);
            None
        }
    };
    let p = match code_for(pfreq) {
        Ok(p) => {
            write_pt_len(w, &p.len, PBIT, None);
            Some(p)
        }
        Err(only) => {
            w.put(PBIT, 0);
            w.put(PBIT, only as u32);
            None
        }
    };
    (c, p)
}

/// The position class: the bit length of the position value (0 for 0).
fn pos_class(pos: u16) -> usize {
    (16 - pos.leading_zeros()) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rom::decompress::decompress;

    fn round_trip(data: &[u8]) -> Vec<u8> {
        let c = compress(data).unwrap();
        let d = decompress(&c, data.len() + 1).unwrap();
        assert_eq!(d.len(), data.len());
        assert!(d == data, "round trip differs for {} bytes", data.len());
        c
    }

    fn lcg(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_edge_sizes_and_shapes() {
        for n in [0, 1, 2, 3, 4, 7, 255, 256, 257, 258, 1000] {
            round_trip(&lcg(n, n as u64));
            round_trip(&vec![b'a'; n]);
        }
        round_trip(&vec![0u8; 300_000]);
        round_trip(&lcg(200_000, 7));
        let text: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("line {} of text\n", i % 977).into_bytes())
            .collect();
        let c = round_trip(&text);
        assert!(c.len() < text.len() / 4, "{} of {}", c.len(), text.len());
    }

    #[test]
    fn skewed_frequencies_stay_within_sixteen_bits() {
        // Fibonacci-like frequencies force a deep Huffman tree without the length limit.
        let mut data = Vec::new();
        let (mut a, mut b) = (1usize, 1usize);
        for sym in 0..26u8 {
            data.extend(std::iter::repeat_n(sym.wrapping_mul(37), a.min(40_000)));
            (a, b) = (b, a + b);
        }
        // Break up runs so literals, not matches, carry the skew.
        let mixed: Vec<u8> = data
            .iter()
            .zip(lcg(data.len(), 3))
            .map(|(d, r)| if r < 8 { r } else { *d })
            .collect();
        round_trip(&mixed);
    }

    #[test]
    fn header_holds_sizes() {
        let c = compress(b"hello hello hello").unwrap();
        assert_eq!(u32::from_le_bytes(c[4..8].try_into().unwrap()), 17);
        assert_eq!(
            u32::from_le_bytes(c[0..4].try_into().unwrap()) as usize,
            c.len() - 8
        );
    }
}
