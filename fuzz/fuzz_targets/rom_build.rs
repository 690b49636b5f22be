//! Fuzzes `rom::build` with arbitrary inputs: the first byte picks options and part kinds, the
//! rest is cut into parts at "|~|" marks (a base ROM, x86 images, images, PE drivers). Any input
//! must give a checked ROM or a refusal, never a panic; an accepted ROM must analyse as built.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfiotool::rom::build::{build, BuildRequest, Part, PartKind};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 3 <= rest.len() {
        if &rest[i..i + 3] == b"|~|" {
            chunks.push(&rest[start..i]);
            i += 3;
            start = i;
        } else {
            i += 1;
        }
    }
    chunks.push(&rest[start..]);
    let mut req = BuildRequest {
        compress: flags & 1 != 0,
        vendor: (flags & 2 != 0).then_some(0x10de),
        device: (flags & 2 != 0).then_some(0x1b80),
        class: (flags & 4 != 0).then_some(0x030000),
        ..BuildRequest::default()
    };
    let mut it = chunks.into_iter();
    if flags & 8 != 0 {
        if let Some(b) = it.next() {
            req.base = Some(("base".into(), b.to_vec()));
        }
    }
    for (k, chunk) in it.enumerate().take(8) {
        let kind = match (flags >> 4).wrapping_add(k as u8) % 3 {
            0 => PartKind::X86,
            1 => PartKind::Image,
            _ => PartKind::Efi,
        };
        req.parts
            .push(Part::new(kind, format!("part{k}"), chunk.to_vec()));
    }
    if let Ok(built) = build(&req) {
        assert_eq!(built.analysis.reachable().count(), built.images.len());
        assert_eq!(built.output.len() % 512, 0);
        assert_eq!(built.analysis.verdict.firmware, built.expected_firmware);
    }
});
