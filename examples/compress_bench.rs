//! Times `rom::compress` for `benches/compare_compress.py`: compresses each file `--reps` times
//! (after one warm-up) and prints one tab-separated line per file:
//! `path  original_bytes  compressed_bytes  median_seconds`. With `--out DIR` it also writes
//! each stream to DIR/<file name>.ours (for the EDK2 decoder to check).
//!
//! usage: compress_bench [--reps N] [--out DIR] FILE...

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use vfiotool::rom::compress::compress;

fn main() -> ExitCode {
    let mut reps = 20usize;
    let mut out_dir = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => reps = n,
                _ => return usage("--reps needs a positive number"),
            },
            "--out" => match args.next() {
                Some(d) => out_dir = Some(std::path::PathBuf::from(d)),
                None => return usage("--out needs a directory"),
            },
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
                eprintln!("compress_bench: {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stream = match compress(&input) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("compress_bench: {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(dir) = &out_dir {
            let name = std::path::Path::new(path)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            if let Err(e) = std::fs::write(dir.join(format!("{name}.ours")), &stream) {
                eprintln!("compress_bench: {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        let mut times: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                black_box(compress(black_box(&input)).ok());
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{path}\t{}\t{}\t{:.9}",
            input.len(),
            stream.len(),
            times[times.len() / 2]
        );
    }
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!("compress_bench: {why}\nusage: compress_bench [--reps N] [--out DIR] FILE...");
    ExitCode::from(2)
}
