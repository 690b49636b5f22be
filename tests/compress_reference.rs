//! Our EFI encoder (`rom::compress`) checked by EDK2's own C decoder (PyPI `uefi-firmware`,
//! driven by `tests/reference/edk2_codec.py`): every stream we make must decompress there to the
//! exact input: empty to several MiB, random, text, zeros, and real EFI drivers (Debian's iPXE
//! ROMs, and the drivers of the shared real dumps when present). On the drivers, our stream must
//! be within 5% of the size of EDK2's EfiCompress output for the same input.
//!
//! A missing python3, `uefi-firmware` or `ipxe-qemu` fails these tests (with the install hint).

mod common;
use common::Rng;
use std::path::Path;
use std::process::Command;

use vfiotool::rom::compress::compress;
use vfiotool::rom::decompress::decompress;

const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/edk2_codec.py");
const INSTALL_HINT: &str = "run `bash tests/install-deps.sh` to install the test dependencies";

/// The EFI driver of every efi-*.rom, walked by 55AA headers with the EFI signature.
fn ipxe_drivers() -> Vec<(String, Vec<u8>)> {
    let dir = "/usr/lib/ipxe/qemu";
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}: {INSTALL_HINT}")) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("efi-") {
            continue;
        }
        let rom = std::fs::read(&path).unwrap();
        let a = vfiotool::rom::analyze(&rom).unwrap();
        for i in a.images.iter().filter(|i| i.efi.is_some()) {
            let img = &rom[i.offset..i.offset + i.length];
            let pe = vfiotool::rom::efi::driver_bytes(img).unwrap().into_owned();
            out.push((format!("ipxe-{}", name.trim_end_matches(".rom")), pe));
        }
    }
    out.sort();
    assert!(out.len() >= 4, "no iPXE EFI drivers in {dir}: {INSTALL_HINT}");
    out
}

/// The decompressed EFI drivers of the shared real dumps (read in place, never copied).
fn real_drivers() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real-roms");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{} is absent under CI=true", dir.display());
        }
        eprintln!(
            "SKIPPED: {} is absent; real-dump drivers not compressed",
            dir.display()
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rom") {
            continue;
        }
        let rom = std::fs::read(&path).unwrap();
        let Ok(a) = vfiotool::rom::analyze(&rom) else {
            continue;
        };
        for i in a.images.iter().filter(|i| i.efi.is_some() && !i.truncated) {
            if let Ok(pe) = vfiotool::rom::efi::driver_bytes(&rom[i.offset..i.offset + i.length]) {
                let stem = path.file_stem().unwrap().to_string_lossy();
                out.push((format!("real-{stem}-{}", i.index), pe.into_owned()));
            }
        }
    }
    out.sort();
    out
}

fn synthetic() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0x0c0f_fee5);
    let words = [
        "option", "ROM", "EFI", "driver", "GOP", "PCIR", "vendor", "device", "firmware", "VFIO",
    ];
    let text: Vec<u8> = (0..60_000)
        .flat_map(|_| {
            let w = words[(rng.next() % words.len() as u64) as usize];
            format!("{w} ").into_bytes()
        })
        .collect();
    let mut v: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("one".into(), vec![0x42]),
        ("two".into(), vec![0, 0]),
        ("three".into(), b"abc".to_vec()),
        ("random-100".into(), rng.bytes(100)),
        ("random-8k".into(), rng.bytes(8192)),
        ("random-1m".into(), rng.bytes(1 << 20)),
        ("zeros-4m".into(), vec![0; 4 << 20]),
        ("text".into(), text.clone()),
    ];
    // Several MiB of mixed content: text, random runs, repeats at every distance in the window.
    let mut mixed = Vec::new();
    while mixed.len() < 3 << 20 {
        match rng.next() % 4 {
            0 => mixed.extend_from_slice(&text[..(rng.next() % 5000) as usize]),
            1 => {
                let n = (rng.next() % 3000) as usize;
                mixed.extend(rng.bytes(n));
            }
            _ => {
                let back = 1 + (rng.next() % 8192) as usize;
                let len = 3 + (rng.next() % 300) as usize;
                for _ in 0..len {
                    let b = mixed.get(mixed.len().wrapping_sub(back)).copied().unwrap_or(7);
                    mixed.push(b);
                }
            }
        }
    }
    v.push(("mixed-3m".into(), mixed));
    v
}

#[test]
fn edk2_decodes_everything_we_compress_and_sizes_match_efi_compress() {
    let o = Command::new("python3").arg(HELPER).arg("check").output();
    assert!(
        o.as_ref().is_ok_and(|o| o.status.success()),
        "the EDK2 reference is not usable: {INSTALL_HINT}"
    );
    let dir = tempfile::tempdir().unwrap();
    let drivers: Vec<(String, Vec<u8>)> = ipxe_drivers().into_iter().chain(real_drivers()).collect();
    let all: Vec<(String, Vec<u8>, bool)> = synthetic()
        .into_iter()
        .map(|(n, d)| (n, d, false))
        .chain(drivers.into_iter().map(|(n, d)| (n, d, true)))
        .collect();
    for (name, data, _) in &all {
        let ours = compress(data).unwrap();
        // Our decoder too, before EDK2's.
        assert!(
            decompress(&ours, data.len()).unwrap() == *data,
            "{name}: our decoder"
        );
        std::fs::write(dir.path().join(format!("{name}.efi-stream")), &ours).unwrap();
        // The helper compresses each .bin with EDK2's EfiCompress (for the size comparison) and
        // TianoCompress; the latter crashes (SIGSEGV) on the mixed payload, so that one gets no
        // EDK2 size, only the decode check.
        if !name.starts_with("mixed") {
            std::fs::write(dir.path().join(format!("{name}.bin")), data).unwrap();
        }
    }
    let o = Command::new("python3")
        .arg(HELPER)
        .arg("batch")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "edk2_codec.py batch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut worst: f64 = 0.0;
    for (name, data, driver) in &all {
        let p = |ext: &str| dir.path().join(format!("{name}.{ext}"));
        assert!(!p("efi-stream.err").exists(), "{name}: EDK2 refused our stream");
        let back = std::fs::read(p("efi-stream.edk2")).unwrap();
        assert!(
            back == *data,
            "{name}: EDK2 EfiDecompress does not give the input back"
        );
        let ours = std::fs::metadata(p("efi-stream")).unwrap().len() as f64;
        let Ok(edk2) = std::fs::metadata(p("bin.efi")) else {
            eprintln!("{name}: {} bytes, ours {ours} (no EDK2 size)", data.len());
            continue;
        };
        let edk2 = edk2.len() as f64;
        let ratio = ours / edk2;
        eprintln!(
            "{name}: {} bytes, ours {ours}, EDK2 {edk2}, {ratio:.4}x",
            data.len()
        );
        if *driver {
            worst = worst.max(ratio);
            assert!(
                ratio <= 1.05,
                "{name}: ours {ours} bytes vs EDK2's {edk2}: more than 5% larger"
            );
        }
    }
    assert!(worst > 0.0, "no drivers compared");
}
