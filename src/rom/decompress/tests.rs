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
    // Distances 1, under 8, 8..16 and over 16 take different copy paths; 256 bytes at distance 3
    // and 280 overlap their source or not.
    for (len, distance) in [
        (3, 1),
        (4, 2),
        (5, 12),
        (6, 5),
        (6, 8),
        (6, 15),
        (5, 9),
        (256, 3),
        (256, 280),
        (5, 1),
        (256, 9),
    ] {
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
