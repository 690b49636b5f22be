//! Full ROM analysis (chain, EFI decompression, PE, GOP verdict) on real-size ROMs: the generated
//! 1 MiB ROM with a compressed GOP driver, a checked-in sample, and the real dumps in
//! ../shared/real-roms when that folder exists.

use std::path::Path;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn inputs() -> Vec<(String, Vec<u8>)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big.rom");
    let made = Command::new("python3")
        .arg(repo.join("rom-samples/generate.py"))
        .arg("--big")
        .arg(&big)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        out.push((
            "generated-1MiB".into(),
            std::fs::read(&big).expect("read big.rom"),
        ));
    } else {
        eprintln!("generated 1 MiB ROM skipped: python3 with uefi-firmware is missing");
    }
    let sample = repo.join("rom-samples/x86-efi-gop-compressed.rom");
    out.push((
        "sample-compressed-gop".into(),
        std::fs::read(sample).expect("sample"),
    ));
    for name in ["sapphire-pulse-rx580-default.rom", "GK107_turbo.rom"] {
        let p = repo.join("../shared/real-roms").join(name);
        if let Ok(bytes) = std::fs::read(&p) {
            out.push((name.trim_end_matches(".rom").into(), bytes));
        }
    }
    out
}

fn analyze(c: &mut Criterion) {
    let mut group = c.benchmark_group("rom_analyze");
    for (name, bytes) in inputs() {
        let a = vfiotool::rom::analyze(&bytes).expect("bench inputs are valid ROMs");
        assert!(a.verdict.uefi_gop, "{name}: the bench must exercise the GOP path");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(&name, |b| {
            b.iter(|| vfiotool::rom::analyze(std::hint::black_box(&bytes)))
        });
    }
    group.finish();
}

criterion_group!(benches, analyze);
criterion_main!(benches);
