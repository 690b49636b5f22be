//! Fuzzes `rom::extract` (what `rom extract` writes) and feeds every image it takes out back
//! into `rom::build`: any bytes must give files or a refusal, never a panic; when the rebuilt
//! ROM is accepted, its analysis must show every image reachable and the last flag on the last.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfiotool::rom::build::{build, BuildRequest, Part, PartKind};

fuzz_target!(|data: &[u8]| {
    let Ok((manifest, files, _)) = vfiotool::rom::extract::extract(data, "fuzz") else {
        return;
    };
    let parts: Vec<Part> = manifest
        .images
        .iter()
        .filter(|i| i.reachable)
        .filter_map(|i| files.iter().find(|f| f.name == i.file))
        .map(|f| Part::new(PartKind::Image, f.name.clone(), f.bytes.clone()))
        .collect();
    let req = BuildRequest {
        parts,
        expect: Some(manifest.firmware.to_string()),
        ..BuildRequest::default()
    };
    if let Ok(built) = build(&req) {
        assert_eq!(built.analysis.reachable().count(), built.images.len());
        assert!(built.images.last().is_some_and(|i| i.last));
    }
});
