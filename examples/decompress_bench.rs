//! Times `rom::decompress` for `benches/compare_decompress.py`: decodes each compressed file
//! `--reps` times (after a few warm-up decodes) and prints one tab-separated line per file:
//! `path  original_bytes  median_seconds  MB/s` (MB = 10^6 bytes of decompressed output).
//!
//! usage: decompress_bench [--reps N] [--tiano] FILE...

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use vfiotool::rom::decompress::{decompress_variant, Variant};

const LIMIT: usize = 64 << 20;

fn main() -> ExitCode {
    let mut reps = 200usize;
    let mut variant = Variant::Efi;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => reps = n,
                _ => return usage("--reps needs a positive number"),
            },
            "--tiano" => variant = Variant::Tiano,
            _ if a.starts_with("--") => return usage(&format!("unknown option {a}")),
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        return usage("no input files");
    }
    for path in &files {
        let input = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("decompress_bench: {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let size = match decompress_variant(&input, variant, LIMIT) {
            Ok(out) => out.len(),
            Err(e) => {
                eprintln!("decompress_bench: {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for _ in 0..3 {
            black_box(decompress_variant(black_box(&input), variant, LIMIT).ok());
        }
        let mut times: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                black_box(decompress_variant(black_box(&input), variant, LIMIT).ok());
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!("{path}\t{size}\t{median:.9}\t{:.1}", size as f64 / median / 1e6);
    }
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!("decompress_bench: {why}\nusage: decompress_bench [--reps N] [--tiano] FILE...");
    ExitCode::from(2)
}
