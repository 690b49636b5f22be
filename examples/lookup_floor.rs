//! The speed limit of a one-symbol-per-probe Huffman decoder on this machine, for
//! `benches/compare_decompress.py`: the loop every such decoder runs at its core (refill the bit
//! buffer, probe a 4096-entry table with its top 12 bits, shift the code out, store the symbol),
//! with nothing else in it, on 8-bit codes like random data's. Each probe's index depends on the
//! previous probe's result, so the loop runs at the latency of shift + load + shift, whatever the
//! width of the machine. Prints `ns_per_symbol` (median of 9 runs of 131072 symbols x 100).

use std::hint::black_box;
use std::time::Instant;

const SYMBOLS: usize = 131_072;

fn main() {
    // Entries as the decoder's: symbol above bit 6, code length (8) in the low bits.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let table: Vec<u16> = (0..4096).map(|_| ((next() as u16 & 0xff) << 6) | 8).collect();
    let data: Vec<u8> = (0..SYMBOLS + 64).map(|_| next() as u8).collect();
    let mut out = vec![0u8; SYMBOLS + 16];
    let mut runs = Vec::new();
    for _ in 0..9 {
        let start = Instant::now();
        for _ in 0..100 {
            decode(black_box(&table), black_box(&data), &mut out);
            black_box(&out);
        }
        runs.push(start.elapsed().as_secs_f64() / 100.0 / SYMBOLS as f64 * 1e9);
    }
    runs.sort_by(f64::total_cmp);
    println!("ns_per_symbol\t{:.3}", runs[runs.len() / 2]);
}

fn decode(table: &[u16], data: &[u8], out: &mut [u8]) {
    let (mut buf, mut count, mut loaded, mut at) = (0u64, 0u32, 0usize, 0usize);
    while at + 3 <= SYMBOLS {
        let Some(chunk) = data.get(loaded..).and_then(<[u8]>::first_chunk::<8>) else {
            return;
        };
        buf |= u64::from_be_bytes(*chunk) >> count;
        loaded += ((63 - count) >> 3) as usize;
        count |= 56;
        for _ in 0..3 {
            let entry = table[(buf >> 52) as usize];
            buf = buf.wrapping_shl(u32::from(entry));
            count -= u32::from(entry & 0x1f);
            out[at] = (entry >> 6) as u8;
            at += 1;
        }
    }
}
