//! Reference tests for `rom::decompress`: EDK2's own C compressor and decompressor (PyPI
//! `uefi-firmware`, driven by `tests/reference/edk2_codec.py`) make streams from payloads of every
//! kind, and our decoder must give back the payload and exactly what EDK2's decoder gives. The real
//! compressed EFI drivers in the iPXE option ROMs are checked the same way.
//!
//! A missing python3, `uefi-firmware` or `ipxe-qemu` fails these tests (with the command that
//! installs them): an unchecked decoder must not look like a checked one.

use std::collections::BTreeMap;
mod common;
use common::Rng;
use std::path::{Path, PathBuf};
use std::process::Command;

use vfiotool::rom::decompress::{decompress, decompress_variant, header, Variant, END_SLACK_BYTES};

const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/edk2_codec.py");
const INSTALL_HINT: &str = "run `bash tests/install-deps.sh` to install the test dependencies";
const IPXE_DIR: &str = "/usr/lib/ipxe/qemu";
const LIMIT: usize = 16 << 20;

fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0x5eed_0fef);
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("one-byte".into(), vec![0x5a]),
        ("zero-byte-value".into(), vec![0]),
        ("random-100".into(), rng.bytes(100)),
        ("random-4k".into(), rng.bytes(4096)),
        ("random-64k".into(), rng.bytes(65536)),
        ("random-1m".into(), rng.bytes(1 << 20)),
        ("zeros-256k".into(), vec![0; 256 << 10]),
    ];
    // Highly repetitive: one line over and over, with a counter now and then so matches vary.
    let mut rep = Vec::new();
    let mut i = 0u32;
    while rep.len() < 300_000 {
        rep.extend_from_slice(b"PCIR\x00\x00 vfio-pci 10de:1b80 GOP ");
        if i % 97 == 0 {
            rep.extend_from_slice(format!("{i:08x}").as_bytes());
        }
        i += 1;
    }
    out.push(("repetitive-300k".into(), rep));
    // Text: words drawn from a small vocabulary, like a log or a string table.
    let words = [
        "the",
        "option",
        "ROM",
        "image",
        "EFI",
        "driver",
        "graphics",
        "output",
        "protocol",
        "VFIO",
        "passthrough",
        "device",
        "vendor",
        "firmware",
        "table",
        "header",
        "checksum",
        "length",
        "bus",
        "slot",
        "function",
        "IOMMU",
        "group",
        "kernel",
        "module",
        "reset",
        "BAR",
        "memory",
    ];
    let mut text = String::new();
    while text.len() < 200_000 {
        text.push_str(words[rng.below(words.len())]);
        text.push(if rng.below(12) == 0 { '\n' } else { ' ' });
    }
    out.push(("text-200k".into(), text.into_bytes()));
    out
}

/// The helper's python must work; otherwise the test fails with the install hint.
fn check_reference() {
    let result = Command::new("python3").arg(HELPER).arg("check").output();
    match result {
        Err(e) => panic!("cannot run python3 ({e}): {INSTALL_HINT}"),
        Ok(o) if !o.status.success() => panic!(
            "the EDK2 reference is not usable: {}\n{INSTALL_HINT}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(_) => {}
    }
}

fn run_batch(dir: &Path) {
    let o = Command::new("python3")
        .arg(HELPER)
        .arg("batch")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {INSTALL_HINT}"));
    assert!(
        o.status.success(),
        "edk2_codec.py batch failed: {}\n{INSTALL_HINT}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The EFI images of an option ROM as (compression type, bytes after the EFI image header), found
/// by walking 512-byte-aligned 55AA headers with the EFI signature 0x0EF1.
fn efi_images(rom: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let u16_at = |o: usize| u16::from_le_bytes([rom[o], rom[o + 1]]) as usize;
    let mut images = Vec::new();
    let mut at = 0;
    while at + 0x1a <= rom.len() {
        let is_efi = rom[at..at + 2] == [0x55, 0xaa] && rom[at + 4..at + 8] == 0x0ef1u32.to_le_bytes();
        let size = u16_at(at + 2) * 512;
        if is_efi && size > 0 && at + size <= rom.len() {
            let start = at + u16_at(at + 0x16);
            images.push((u16_at(at + 0x0c), rom[start..at + size].to_vec()));
        }
        at += if is_efi && size > 0 { size } else { 512 };
    }
    images
}

/// The EFI driver PEs (uncompressed in Debian's build) of the installed iPXE ROMs, by ROM name.
fn ipxe_driver_pes() -> Vec<(String, Vec<u8>)> {
    let entries = std::fs::read_dir(IPXE_DIR).unwrap_or_else(|e| panic!("{IPXE_DIR} ({e}): {INSTALL_HINT}"));
    let mut pes = Vec::new();
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.starts_with("efi-") || !name.ends_with(".rom") {
            continue;
        }
        for (kind, image) in efi_images(&std::fs::read(&path).expect("read rom")) {
            assert_eq!(
                kind, 0,
                "{name}: expected iPXE's EFI image to be stored uncompressed"
            );
            assert_eq!(&image[..2], b"MZ", "{name}: EFI image is not a PE");
            pes.push((name.trim_end_matches(".rom").to_string(), image));
        }
    }
    pes.sort();
    assert!(
        pes.len() >= 4,
        "expected the iPXE EFI ROMs in {IPXE_DIR}: {INSTALL_HINT}"
    );
    pes
}

/// Compresses every payload with EDK2 in both variants; checks that ours decodes each to the
/// payload and to exactly EDK2's own decoder output. Returns how many streams were checked.
fn check_round_trips(payloads: Vec<(String, Vec<u8>)>) -> usize {
    check_reference();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut originals = BTreeMap::new();
    for (name, data) in payloads {
        std::fs::write(dir.path().join(format!("{name}.bin")), &data).expect("write payload");
        originals.insert(name, data);
    }
    run_batch(dir.path());
    let mut checked = 0;
    for (name, original) in &originals {
        for (ext, variant) in [("efi", Variant::Efi), ("tiano", Variant::Tiano)] {
            let stream = read(dir.path().join(format!("{name}.bin.{ext}")));
            let edk2 = read(dir.path().join(format!("{name}.bin.{ext}.edk2")));
            let (compressed, size) = header(&stream).expect("header");
            assert_eq!(
                compressed as usize,
                stream.len() - 8,
                "{name}.{ext}: compressed size field"
            );
            assert_eq!(size as usize, original.len(), "{name}.{ext}: original size field");
            let ours = decompress_variant(&stream, variant, LIMIT)
                .unwrap_or_else(|e| panic!("{name}.{ext} ({} bytes): {e}", stream.len()));
            assert!(
                ours == *original,
                "{name}.{ext}: our output differs from the payload"
            );
            assert!(
                ours == edk2,
                "{name}.{ext}: our output differs from EDK2's decoder"
            );
            if variant == Variant::Efi {
                assert_eq!(
                    decompress(&stream, LIMIT).as_ref(),
                    Ok(original),
                    "{name}: decompress()"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * originals.len());
    checked
}

/// Random (0, 1, 100 bytes .. 1 MiB), zeros, repetitive and text payloads, compressed by EDK2 in
/// both variants, decode to themselves and to what EDK2's decoder produces.
#[test]
fn edk2_compressed_payloads_round_trip_and_match_edk2() {
    assert_eq!(check_round_trips(payloads()), 2 * 10);
}

/// Real PE binaries: the EFI drivers of all installed iPXE ROMs, compressed by EDK2 in both
/// variants, decode to themselves and to what EDK2's decoder produces.
#[test]
fn ipxe_efi_drivers_round_trip_and_match_edk2() {
    let pes = ipxe_driver_pes();
    let n = pes.len();
    assert_eq!(check_round_trips(pes), 2 * n);
}

/// The end-of-data policy against EDK2: a stream whose declared size stops short of its trailing
/// zero bytes, by no more than the slack, decodes exactly as EDK2 decodes it (EDK2 reads zeros past
/// the end); one cut 8 bytes short is refused as truncated, at the end of its data.
#[test]
fn streams_cut_short_decode_like_edk2_within_the_slack() {
    check_reference();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x7a11);
    for i in 0..40 {
        let len = 200 + rng.below(3000);
        std::fs::write(dir.path().join(format!("r{i}.bin")), rng.bytes(len)).expect("write");
    }
    run_batch(dir.path());
    let cut_dir = dir.path().join("cut");
    std::fs::create_dir_all(&cut_dir).expect("mkdir");
    let shorten = |clean: &[u8], cut: usize| {
        let mut s = clean[..clean.len() - cut].to_vec();
        let c = (s.len() - 8) as u32;
        s[..4].copy_from_slice(&c.to_le_bytes());
        s
    };
    let mut cuts = Vec::new();
    for i in 0..40 {
        let clean = read(dir.path().join(format!("r{i}.bin.efi")));
        let zeros = clean.iter().rev().take_while(|&&b| b == 0).count();
        for cut in 1..=zeros.min(END_SLACK_BYTES) {
            let name = format!("r{i}-cut{cut}");
            let s = shorten(&clean, cut);
            std::fs::write(cut_dir.join(format!("{name}.efi-stream")), &s).expect("write");
            cuts.push((name, s));
        }
        let short = shorten(&clean, 8);
        let e = decompress(&short, LIMIT).expect_err("a stream 8 bytes short must be refused");
        assert!(
            e.what.contains("ended while symbols were still needed"),
            "r{i}: {e}"
        );
        assert_eq!(e.offset, short.len(), "r{i}: {e}");
    }
    assert!(
        cuts.len() >= 20,
        "only {} streams ended in zero bytes",
        cuts.len()
    );
    run_batch(&cut_dir);
    for (name, s) in &cuts {
        let edk2 = read(cut_dir.join(format!("{name}.efi-stream.edk2")));
        let ours = decompress(s, LIMIT).unwrap_or_else(|e| panic!("{name}: refused within the slack: {e}"));
        assert!(ours == edk2, "{name}: differs from EDK2");
    }
}

/// Bounded loop: EDK2 streams with bytes flipped, dropped or cut off never make the decoder
/// panic, and whatever it returns has the size the header claims.
#[test]
fn mutated_edk2_streams_never_panic() {
    check_reference();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0xdec0de);
    let text: Vec<u8> = payloads()
        .into_iter()
        .find(|(n, _)| n == "text-200k")
        .expect("text")
        .1;
    std::fs::write(dir.path().join("text.bin"), &text[..20_000]).expect("write");
    std::fs::write(dir.path().join("random.bin"), rng.bytes(3000)).expect("write");
    std::fs::write(dir.path().join("zeros.bin"), vec![0u8; 50_000]).expect("write");
    run_batch(dir.path());
    let mut outcomes = [0usize; 2];
    for name in ["text", "random", "zeros"] {
        for (ext, variant) in [("efi", Variant::Efi), ("tiano", Variant::Tiano)] {
            let clean = read(dir.path().join(format!("{name}.bin.{ext}")));
            for round in 0..150 {
                let mut s = clean.clone();
                match round % 3 {
                    0 => {
                        for _ in 0..1 + rng.below(4) {
                            let i = 8 + rng.below(s.len() - 8);
                            s[i] ^= 1 << rng.below(8);
                        }
                    }
                    1 => {
                        let i = 8 + rng.below(s.len() - 8);
                        s.remove(i);
                        let c = (s.len() - 8) as u32;
                        s[..4].copy_from_slice(&c.to_le_bytes());
                    }
                    _ => {
                        let keep = 8 + rng.below(s.len() - 8);
                        s.truncate(keep);
                        let c = (keep - 8) as u32;
                        s[..4].copy_from_slice(&c.to_le_bytes());
                    }
                }
                let (_, size) = header(&s).expect("header");
                match decompress_variant(&s, variant, LIMIT) {
                    Ok(out) => {
                        assert_eq!(out.len(), size as usize);
                        outcomes[0] += 1;
                    }
                    Err(e) => {
                        assert!(
                            e.offset <= s.len(),
                            "{name}.{ext}: offset {:#x} past the input",
                            e.offset
                        );
                        outcomes[1] += 1;
                    }
                }
            }
        }
    }
    // Corruption must be caught some of the time; a decoder that accepted everything would not be.
    assert!(
        outcomes[1] > 100,
        "only {} of {} mutated streams were refused",
        outcomes[1],
        outcomes[0] + outcomes[1]
    );
}
