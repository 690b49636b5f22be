//! Fuzzes our EFI encoder against our decoder: any bytes must compress, and the stream must
//! decompress to exactly those bytes. (EDK2's decoder is the other referee, in
//! tests/compress_reference.rs.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfiotool::rom::{compress::compress, decompress::decompress};

fuzz_target!(|data: &[u8]| {
    let stream = compress(data).expect("fuzz inputs are far below 4 GiB");
    let back = decompress(&stream, data.len()).expect("our own stream decodes");
    assert!(back == data, "round trip differs ({} bytes)", data.len());
});
