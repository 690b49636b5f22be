//! Fuzzes `rom::analyze`, the one entry point every `rom` command reads a ROM through: any bytes
//! must give a result (an analysis or a refusal), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vfiotool::rom::analyze(data);
});
