//! `rom extract` and `rom build` round trips on every ROM there is here: the generated samples
//! (rom-samples/), Debian's iPXE ROMs and the shared real dumps (../shared/real-roms, read in
//! place; absent -> a failure under CI=true, a loud SKIPPED elsewhere).
//!
//! * extract then build (`--image` of every reachable image, in order) gives the same chain:
//!   byte for byte, except the last-image flags and x86 checksum bytes build is there to set;
//! * extract then build from the `.efi` drivers (`--efi`, compressed when the original was) gives
//!   a ROM whose `rom parse` verdict is the one build expected, whose drivers read back as the
//!   very `.efi` files, and every `.efi` is a PE that objdump and pefile accept.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn roms() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let list = |dir: &Path, pred: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p| pred(&p.file_name().unwrap().to_string_lossy()));
        v.sort();
        v
    };
    out.extend(list(&repo().join("rom-samples"), &|n| n.ends_with(".rom")));
    let ipxe = list(Path::new("/usr/lib/ipxe/qemu"), &|n| n.starts_with("efi-"));
    assert!(
        !ipxe.is_empty(),
        "no /usr/lib/ipxe/qemu/efi-*.rom: run `bash tests/install-deps.sh`"
    );
    out.extend(ipxe);
    let real = repo().join("../shared/real-roms");
    if real.is_dir() {
        out.extend(list(&real, &|n| n.ends_with(".rom")));
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{} is absent under CI=true: the real-dump round trips must run",
            real.display()
        );
    } else {
        eprintln!(
            "SKIPPED: {} is absent; the real-dump round trips did not run",
            real.display()
        );
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn ok(args: &[&str]) -> Value {
    let o = run(args);
    assert_eq!(code(&o), 0, "{args:?}: {}{}", stdout(&o), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&o)))
}

/// Offsets inside an image that build may change: the PCIR indicator, the NPDE flag byte,
/// and for x86 images the checksum (last) byte.
fn settable(image: &[u8], code_type: u64) -> Vec<usize> {
    let pcir = u16::from_le_bytes([image[0x18], image[0x19]]) as usize;
    let mut v = vec![pcir + 0x15];
    let plen = u16::from_le_bytes([image[pcir + 0x0A], image[pcir + 0x0B]]).max(0x18) as usize;
    let npde = (pcir + plen + 15) & !15;
    if image.get(npde..npde + 4) == Some(b"NPDE") {
        v.push(npde + 0x0A);
    }
    if code_type == 0 {
        v.push(image.len() - 1);
    }
    v
}

#[test]
fn extract_then_build_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (n, rom) in roms().iter().enumerate() {
        let name = rom.display().to_string();
        let dir = tmp.path().join(format!("x{n}"));
        let m = ok(&["rom", "extract", "--json", s(rom), "-o", s(&dir)]);
        let orig = std::fs::read(rom).unwrap();
        let images = m["images"].as_array().unwrap();
        assert_eq!(m["schema"], "vfiotool.rom-extract/1");
        let on_disk: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            on_disk["images"], m["images"],
            "{name}: manifest.json and --json agree"
        );
        for i in images {
            let f = std::fs::read(dir.join(i["file"].as_str().unwrap())).unwrap();
            let off = i["offset"].as_u64().unwrap() as usize;
            assert_eq!(
                f,
                orig[off..off + f.len()],
                "{name}: {} holds the image's bytes",
                i["file"]
            );
        }
        let reachable: Vec<&Value> = images.iter().filter(|i| i["reachable"] == true).collect();
        let truncated = reachable.iter().any(|i| i["truncated"] == true);
        let out = tmp.path().join(format!("raw{n}.rom"));
        // build sets x86 checksums, so the rebuilt ROM is the original with its checksums fixed:
        // the verdict to compare with is that ROM's (SeaBIOS refuses a bad checksum, so it can
        // differ from the original's), made by `rom patch --fix-checksum`.
        let want = if truncated {
            m["firmware"].clone()
        } else {
            let fixed = tmp.path().join(format!("fixed{n}.rom"));
            ok(&[
                "rom",
                "patch",
                "--json",
                "--fix-checksum",
                s(rom),
                "-o",
                s(&fixed),
            ]);
            ok(&["rom", "parse", "--json", s(&fixed)])["verdict"]["firmware"].clone()
        };
        let mut args: Vec<String> = vec!["rom".into(), "build".into(), "--json".into()];
        for i in &reachable {
            args.push("--image".into());
            args.push(s(&dir.join(i["file"].as_str().unwrap())).into());
        }
        args.extend([
            "--expect".into(),
            want.as_str().unwrap().into(),
            "-o".into(),
            s(&out).into(),
        ]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        if truncated {
            let o = run(&argv);
            assert_eq!(
                code(&o),
                3,
                "{name}: a truncated image is refused: {}",
                stderr(&o)
            );
            assert!(!out.exists(), "{name}: nothing written");
            continue;
        }
        let b = ok(&argv);
        assert_eq!(b["verdict"]["firmware"], want, "{name}");
        let rebuilt = std::fs::read(&out).unwrap();
        let mut at = 0;
        for i in &reachable {
            let off = i["offset"].as_u64().unwrap() as usize;
            let len = i["size"].as_u64().unwrap() as usize;
            let (a, b) = (&orig[off..off + len], &rebuilt[at..at + len]);
            let allowed = settable(a, i["code_type"].as_u64().unwrap());
            for (k, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    x == y || allowed.contains(&k),
                    "{name}: image {} differs at {k:#x}",
                    i["index"]
                );
            }
            at += len;
        }
        assert_eq!(at, rebuilt.len(), "{name}: same chain length");
        checked += 1;
        rebuild_from_drivers(&name, &dir, &reachable, &tmp.path().join(format!("pe{n}.rom")));
    }
    assert!(checked >= 20, "only {checked} ROMs round-tripped");
}

/// Build again with every reachable EFI image made from its `.efi` driver.
fn rebuild_from_drivers(name: &str, dir: &Path, reachable: &[&Value], out: &Path) {
    let efis: Vec<&&Value> = reachable
        .iter()
        .filter(|i| i["efi"]["driver_file"].is_string())
        .collect();
    if efis.is_empty() {
        return;
    }
    let mut args: Vec<String> = vec!["rom".into(), "build".into(), "--json".into()];
    let mut compress = false;
    for i in reachable {
        let file = &i["efi"]["driver_file"];
        let subsystem = i["efi"]["subsystem"].as_u64().unwrap_or(0);
        if let (Some(f), true) = (file.as_str(), matches!(subsystem, 11 | 12)) {
            pe_tools_accept(&dir.join(f), i["efi"]["machine"].as_u64().unwrap());
            compress |= i["efi"]["compressed"] == true;
            args.push("--efi".into());
            args.push(s(&dir.join(f)).into());
        } else {
            args.push("--image".into());
            args.push(s(&dir.join(i["file"].as_str().unwrap())).into());
        }
    }
    if compress {
        args.push("--compress".into());
    }
    args.extend(["-o".into(), s(out).into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let b = ok(&argv);
    let parsed = parse_json(out);
    assert_eq!(
        parsed["verdict"]["firmware"], b["expected_firmware"],
        "{name}: build's expectation holds"
    );
    // The drivers come back out as the same files.
    let again = out.with_extension("x");
    let m = ok(&["rom", "extract", "--json", s(out), "-o", s(&again)]);
    let back: Vec<Vec<u8>> = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["efi"]["driver_file"].as_str())
        .map(|f| std::fs::read(again.join(f)).unwrap())
        .collect();
    let sent: Vec<Vec<u8>> = reachable
        .iter()
        .filter_map(|i| i["efi"]["driver_file"].as_str())
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert_eq!(back.len(), sent.len(), "{name}");
    for (k, (x, y)) in back.iter().zip(&sent).enumerate() {
        assert!(x == y, "{name}: driver {k} reads back as the .efi given");
    }
}

/// objdump (Debian's binutils knows x86 PE only) and pefile (every machine) read the driver.
fn pe_tools_accept(efi: &Path, machine: u64) {
    check_pefile(efi);
    if !matches!(machine, 0x8664 | 0x14C) {
        return;
    }
    let o = Command::new("objdump")
        .arg("-p")
        .arg(efi)
        .output()
        .expect("objdump (binutils) runs");
    assert!(
        o.status.success(),
        "objdump -p {}: {}",
        efi.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Subsystem"),
        "objdump -p {}",
        efi.display()
    );
}

fn check_pefile(efi: &Path) {
    require_python_module("pefile");
    let o = Command::new("python3")
        .args([
            "-c",
            "import pefile,sys; pe=pefile.PE(sys.argv[1]); print(pe.OPTIONAL_HEADER.Subsystem)",
        ])
        .arg(efi)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pefile {}: {}",
        efi.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn build_adds_a_gop_driver_to_a_legacy_only_rom() {
    // The legacy-only sample plus the GOP driver of the sample that has one.
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("gop");
    let m = ok(&[
        "rom",
        "extract",
        "--json",
        s(&sample("x86-efi-gop.rom")),
        "-o",
        s(&x),
    ]);
    let efi = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i["efi"]["driver_file"].as_str())
        .unwrap();
    let out = tmp.path().join("legacy+gop.rom");
    let b = ok(&[
        "rom",
        "build",
        "--json",
        "--base",
        s(&sample("x86-only.rom")),
        "--efi",
        s(&x.join(efi)),
        "--compress",
        "-o",
        s(&out),
    ]);
    assert_eq!(b["expected_firmware"], "ovmf");
    assert_eq!(b["written"], true);
    let p = parse_json(&out);
    assert_eq!(p["verdict"]["firmware"], "ovmf");
    let imgs = p["images"].as_array().unwrap();
    assert_eq!(
        (imgs[0]["last"].clone(), imgs[1]["last"].clone()),
        (Value::Bool(false), Value::Bool(true))
    );
    assert_eq!(imgs[0]["checksum_ok"], true);
    assert_eq!(imgs[1]["efi"]["compressed"], true);
    // Asking for another verdict writes nothing; so does a second run without --force.
    let o = run(&[
        "rom",
        "build",
        "--base",
        s(&sample("x86-only.rom")),
        "--expect",
        "seabios",
        "-o",
        s(&tmp.path().join("no.rom")),
        "--efi",
        s(&x.join(efi)),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("firmware verdict is ovmf, expected seabios"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("no.rom").exists());
    let o = run(&[
        "rom",
        "build",
        "--base",
        s(&sample("x86-only.rom")),
        "-o",
        s(&out),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    // Images keep the order given across --x86/--efi/--image.
    let order = tmp.path().join("order.rom");
    let x86 = x.join(m["images"][0]["file"].as_str().unwrap());
    let b = ok(&[
        "rom",
        "build",
        "--json",
        "--efi",
        s(&x.join(efi)),
        "--x86",
        s(&x86),
        "-o",
        s(&order),
    ]);
    let kinds: Vec<&str> = b["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["efi", "x86"]);
}

#[test]
fn extract_refuses_bad_input_and_leaves_no_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.bin");
    std::fs::write(&junk, vec![0x55u8; 4096]).unwrap();
    let dir = tmp.path().join("out");
    let o = run(&["rom", "extract", s(&junk), "-o", s(&dir)]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(!dir.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary directory left: {leftovers:?}");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep"), b"x").unwrap();
    let o = run(&["rom", "extract", s(&sample("x86-only.rom")), "-o", s(&dir)]);
    assert_eq!(code(&o), 2, "a non-empty directory is refused: {}", stderr(&o));
    // A PE that is an application is refused by build.
    let app = tmp.path().join("app.efi");
    let mut pe = vec![0u8; 0x200];
    pe[0..2].copy_from_slice(b"MZ");
    pe[0x3C] = 0x40;
    pe[0x40..0x44].copy_from_slice(b"PE\0\0");
    pe[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes());
    pe[0x54] = 240;
    pe[0x58..0x5A].copy_from_slice(&0x20Bu16.to_le_bytes());
    pe[0x58 + 68] = 10;
    std::fs::write(&app, &pe).unwrap();
    let o = run(&[
        "rom",
        "build",
        "--base",
        s(&sample("x86-only.rom")),
        "--efi",
        s(&app),
        "-o",
        s(&tmp.path().join("a.rom")),
    ]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("subsystem 10 (application)"),
        "{}",
        stderr(&o)
    );
}

/// Boots OVMF (Debian's, under QEMU TCG) with an e1000 whose romfile is `rom`, until `until`
/// shows on the serial log or `secs` pass; returns the log.
fn ovmf_serial(rom: &Path, until: &[&str], secs: u64) -> String {
    let code = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
    let vars_src = Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd");
    assert!(
        code.exists() && vars_src.exists(),
        "OVMF is missing: run `bash tests/install-deps.sh`"
    );
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.fd");
    std::fs::copy(vars_src, &vars).unwrap();
    let log = dir.path().join("serial.log");
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-m",
            "256",
            "-display",
            "none",
            "-monitor",
            "none",
            "-nodefaults",
        ])
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,readonly=on,file={}",
            code.display()
        ))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars.display()))
        .arg("-device")
        .arg(format!("e1000,romfile={},netdev=n0", rom.display()))
        .args(["-netdev", "user,id=n0", "-serial"])
        .arg(format!("file:{}", log.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 runs: run `bash tests/install-deps.sh`");
    let start = std::time::Instant::now();
    let mut text = String::new();
    while start.elapsed().as_secs() < secs {
        std::thread::sleep(std::time::Duration::from_millis(500));
        text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        if until.iter().any(|u| text.contains(u)) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    text
}

/// The real firmware's decoder (OVMF's UefiDecompressLib) runs a driver that only our encoder
/// compressed: iPXE's EFI driver rebuilt with `--compress` prints its banner on the serial log.
/// The control, the same ROM with part of the stream zeroed, never does.
#[test]
fn ovmf_runs_a_driver_compressed_by_our_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("ipxe");
    let m = ok(&[
        "rom",
        "extract",
        "--json",
        "/usr/lib/ipxe/qemu/efi-e1000.rom",
        "-o",
        s(&x),
    ]);
    let x86 = x.join(m["images"][0]["file"].as_str().unwrap());
    let efi = x.join(m["images"][1]["efi"]["driver_file"].as_str().unwrap());
    let rom = tmp.path().join("ipxe-compressed.rom");
    let b = ok(&[
        "rom",
        "build",
        "--json",
        "--x86",
        s(&x86),
        "--efi",
        s(&efi),
        "--compress",
        "-o",
        s(&rom),
    ]);
    assert_eq!(b["images"][1]["compressed"], true);
    let log = ovmf_serial(&rom, &["iPXE 1"], 120);
    assert!(
        log.contains("iPXE 1"),
        "OVMF did not run the driver; serial log:\n{log}"
    );

    let mut bad = std::fs::read(&rom).unwrap();
    let start = b["images"][1]["offset"].as_u64().unwrap() as usize + 0x38 + 8 + 200;
    bad[start..start + 60_000].fill(0);
    let bad_rom = tmp.path().join("ipxe-corrupt.rom");
    std::fs::write(&bad_rom, &bad).unwrap();
    let log = ovmf_serial(&bad_rom, &["iPXE 1", "Shell>"], 120);
    assert!(
        log.contains("Shell>"),
        "control: OVMF did not reach its shell; serial log:\n{log}"
    );
    assert!(
        !log.contains("iPXE 1"),
        "control: a corrupted stream must not run"
    );
}
