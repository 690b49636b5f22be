//! Malformed input never panics or hangs: each case gives a one-line error with a documented
//! exit code, or a report that names the problem, quickly.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous, to catch hangs on a loaded CI machine in a debug build; the release-build timing is
/// measured separately (see the README's performance notes).
const HANG: Duration = Duration::from_secs(5);

struct Case {
    name: &'static str,
    data: Vec<u8>,
    exit: i32,
    /// Text that the one-line error (exit 3) or the report (exit 0) must contain.
    needle: &'static str,
}

fn x86() -> Vec<u8> {
    fs::read(sample("x86-only.rom")).unwrap()
}

fn with(mut data: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    data[at..at + bytes.len()].copy_from_slice(bytes);
    data
}

fn cases() -> Vec<Case> {
    let mut rng = 0x9e3779b97f4a7c15u64;
    let random: Vec<u8> = (0..1 << 20)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        })
        .collect();
    let efi = fs::read(sample("x86-efi-gop-compressed.rom")).unwrap();
    vec![
        Case {
            name: "empty",
            data: vec![],
            exit: 3,
            needle: "empty (0 bytes)",
        },
        Case {
            name: "header only",
            data: x86()[..0x30].to_vec(),
            exit: 3,
            needle: "PCIR pointer (u16 at 0x18) = 0x40 points past the end",
        },
        Case {
            name: "cut inside the image",
            data: x86()[..100].to_vec(),
            exit: 0,
            needle: "truncated",
        },
        Case {
            name: "zero length image",
            data: with(x86(), 0x50, &[0, 0]),
            exit: 3,
            needle: "PCIR.image_length at 0x50 is 0",
        },
        Case {
            name: "PCIR pointer outside",
            data: with(x86(), 0x18, &[0xF0, 0xFF]),
            exit: 3,
            needle: "= 0xfff0 points past the end of the file",
        },
        Case {
            name: "PCIR pointer to garbage",
            data: with(x86(), 0x18, &[0x00, 0x01]),
            exit: 3,
            needle: "no \"PCIR\" at 0x100",
        },
        Case {
            name: "PCIR length 0",
            data: with(x86(), 0x4A, &[0, 0]),
            exit: 0,
            needle: "PCIR.length at 0x4a is 0x0",
        },
        Case {
            name: "image length past the file",
            data: with(x86(), 0x50, &[0xFF, 0xFF]),
            exit: 0,
            needle: "but the file ends at 0x8000",
        },
        Case {
            name: "55AA everywhere",
            data: [0x55, 0xAA].repeat(32 << 10),
            exit: 3,
            needle: "no \"PCIR\" at 0xaa55 (PCIR pointer 0xaa55), found aa 55 aa 55",
        },
        Case {
            name: "random bytes",
            data: random,
            exit: 3,
            needle: "no option ROM image",
        },
        Case {
            name: "corrupt EFI stream",
            data: with(efi.clone(), 0x8000 + 0x60 + 8, &[0xFF; 64]),
            exit: 0,
            needle: "EFI decompression failed",
        },
        Case {
            name: "EFI stream length lies",
            data: with(efi, 0x8000 + 0x60, &[0xFF, 0xFF, 0xFF, 0x7F]),
            exit: 0,
            needle: "problem:",
        },
    ]
}

fn check(name: &str, path: &Path, exit: i32, needle: &str) {
    let start = Instant::now();
    let o = run(&["rom", "parse", path.to_str().unwrap()]);
    let took = start.elapsed();
    assert!(took < HANG, "{name}: took {took:?}");
    assert_eq!(
        code(&o),
        exit,
        "{name}: stdout {} stderr {}",
        stdout(&o),
        stderr(&o)
    );
    if exit == 0 {
        assert!(
            stdout(&o).contains(needle),
            "{name}: report lacks {needle:?}: {}",
            stdout(&o)
        );
    } else {
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(err.starts_with("vfiotool: "), "{name}: {err}");
        assert!(
            err.contains(path.file_name().unwrap().to_str().unwrap()),
            "{name}: names the file: {err}"
        );
        assert!(err.contains(needle), "{name}: error lacks {needle:?}: {err}");
    }
    // JSON mode: still exactly one document, and errors are JSON too.
    let o = run(&["rom", "parse", "--json", path.to_str().unwrap()]);
    assert_eq!(code(&o), exit, "{name} (json)");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{name}: {e}"));
    if exit != 0 {
        assert_eq!(doc["schema"], "vfiotool.error/1");
        assert_eq!(doc["exit_code"], exit);
    } else {
        assert_eq!(doc["schema"], "vfiotool.rom/1");
    }
}

#[test]
fn malformed_roms_give_clear_errors_or_reports() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let path = dir.path().join(case.name.replace(' ', "-") + ".rom");
        fs::write(&path, &case.data).unwrap();
        check(case.name, &path, case.exit, case.needle);
    }
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    check("directory", dir.path(), 3, "is a directory");
}

#[test]
fn a_missing_file_is_a_system_error() {
    let dir = tempfile::tempdir().unwrap();
    check(
        "missing",
        &dir.path().join("nope.rom"),
        4,
        "nope.rom: open: No such file",
    );
}

#[test]
fn a_100_mb_file_is_scanned_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros-100m.rom");
    fs::File::create(&path).unwrap().set_len(100 << 20).unwrap();
    check(
        "100 MB of zeros",
        &path,
        3,
        "no 512-byte-aligned 55AA with a valid PCIR in 104857600 bytes",
    );
}

#[test]
fn a_file_larger_than_any_rom_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.rom");
    fs::File::create(&path).unwrap().set_len(300 << 20).unwrap();
    check("300 MB", &path, 3, "larger than 256 MiB");
}

#[test]
fn usage_errors_exit_2_and_are_json_in_json_mode() {
    let o = run(&["rom", "parse"]);
    assert_eq!(code(&o), 2);
    let o = run(&["rom", "parse", "--json", "--no-such-flag", "x"]);
    assert_eq!(code(&o), 2);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["kind"], "usage");
    // The JSON error keeps clap's detail: which argument was wrong, in plain text.
    let message = doc["error"].as_str().unwrap_or_default();
    assert!(message.contains("--no-such-flag"), "{message}");
    assert!(!message.contains('\x1b'), "{message}");
}

#[test]
fn a_closed_pipe_exits_quietly() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin())
        .args(["rom", "parse"])
        .args(std::iter::repeat_n(sample("x86-efi-gop.rom"), 2000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}
