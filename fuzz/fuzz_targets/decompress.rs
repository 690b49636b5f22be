//! Fuzzes `rom::decompress`: any bytes must give Ok or Err, never a panic, an out-of-bounds access
//! or an allocation beyond the limit; an Ok output has exactly the size the header claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfiotool::rom::decompress::{decompress, decompress_variant, header, Variant};

/// Small enough that a claimed size costs the fuzzer nothing, large enough for real drivers.
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the variant so that both get explored from one corpus.
    let (variant, stream) = match data.split_first() {
        Some((&v, rest)) if v & 1 == 1 => (Variant::Tiano, rest),
        Some((_, rest)) => (Variant::Efi, rest),
        None => (Variant::Efi, data),
    };
    let result = match variant {
        Variant::Efi => decompress(stream, LIMIT),
        Variant::Tiano => decompress_variant(stream, variant, LIMIT),
    };
    match result {
        Ok(out) => {
            let (_, original) = header(stream).expect("Ok implies a header");
            assert_eq!(out.len(), original as usize);
        }
        Err(e) => assert!(
            e.offset <= stream.len(),
            "error offset {:#x} past the input",
            e.offset
        ),
    }
});
