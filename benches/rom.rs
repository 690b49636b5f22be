//! Criterion benches for `rom`. `decompress_benches` times the EFI decompressor on streams made by
//! EDK2's own compressor (through tests/reference/edk2_codec.py, so python3 and uefi-firmware are
//! needed: `bash tests/install-deps.sh`). The marked spot below is for the option-ROM parse benches.
//!
//! `cargo bench --bench rom` runs them all; `cargo bench --bench rom -- decompress` only these.

use std::hint::black_box;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vfiotool::rom::decompress::{decompress, decompress_variant, Variant};

const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/edk2_codec.py");
const IPXE_ROM: &str = "/usr/lib/ipxe/qemu/efi-e1000e.rom";
const LIMIT: usize = 64 << 20;

/// The uncompressed EFI driver PE in an iPXE option ROM (a GOP driver's size, ~170 KB).
fn ipxe_pe() -> Vec<u8> {
    let rom = std::fs::read(IPXE_ROM)
        .unwrap_or_else(|e| panic!("{IPXE_ROM}: {e}: run `bash tests/install-deps.sh`"));
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([rom[o], rom[o + 1]]));
    let mut at = 0;
    while at + 0x1a <= rom.len() {
        let is_efi = rom[at..at + 2] == [0x55, 0xaa] && rom[at + 4..at + 8] == [0xf1, 0x0e, 0, 0];
        let size = if is_efi { u16_at(at + 2) * 512 } else { 0 };
        if is_efi && size > 0 && at + size <= rom.len() {
            let image = &rom[at + u16_at(at + 0x16)..at + size];
            if image.starts_with(b"MZ") {
                return image.to_vec();
            }
        }
        at += if size > 0 { size } else { 512 };
    }
    panic!("no EFI PE image in {IPXE_ROM}");
}

/// A payload and its EDK2-compressed streams.
struct Streams {
    name: &'static str,
    original: Vec<u8>,
    efi: Vec<u8>,
    tiano: Vec<u8>,
}

/// Every payload, compressed by EDK2 in both variants.
fn streams() -> Vec<Streams> {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let random: Vec<u8> = (0..128 << 10)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let text: Vec<u8> = (0..26_000u32)
        .flat_map(|i| format!("PCIR vfio-pci 10de:1b80 GOP driver line {:06}\n", i / 50).into_bytes())
        .collect();
    let payloads = [
        ("gop-like-pe", ipxe_pe()),
        ("random-128k", random),
        ("repetitive-1m", text),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, data) in &payloads {
        std::fs::write(dir.path().join(format!("{name}.bin")), data).expect("write payload");
    }
    let status = Command::new("python3")
        .arg(HELPER)
        .arg("batch")
        .arg(dir.path())
        .status()
        .unwrap_or_else(|e| panic!("python3: {e}: run `bash tests/install-deps.sh`"));
    assert!(
        status.success(),
        "edk2_codec.py failed: run `bash tests/install-deps.sh`"
    );
    let read =
        |name: &str, ext: &str| std::fs::read(dir.path().join(format!("{name}.bin.{ext}"))).expect("stream");
    payloads
        .into_iter()
        .map(|(name, original)| Streams {
            name,
            original,
            efi: read(name, "efi"),
            tiano: read(name, "tiano"),
        })
        .collect()
}

fn decompress_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("decompress");
    for Streams {
        name,
        original,
        efi,
        tiano,
    } in streams()
    {
        assert_eq!(
            decompress(&efi, LIMIT).as_ref(),
            Ok(&original),
            "{name}: EFI stream"
        );
        group.throughput(Throughput::Bytes(original.len() as u64));
        group.bench_function(format!("efi/{name}"), |b| {
            b.iter(|| decompress(black_box(&efi), LIMIT))
        });
        group.bench_function(format!("tiano/{name}"), |b| {
            b.iter(|| decompress_variant(black_box(&tiano), Variant::Tiano, LIMIT))
        });
    }
    group.finish();
}

// ---- Option-ROM parse benches go here: add `fn parse_benches(c: &mut Criterion)` and list it in
// ---- `criterion_group!` below.

criterion_group!(benches, decompress_benches);
criterion_main!(benches);
