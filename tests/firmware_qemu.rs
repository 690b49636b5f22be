//! The firmware model checked against the real firmware: QEMU (TCG) boots Debian's OVMF and
//! SeaBIOS with an emulated e1000 whose `romfile=` is a variant of Debian's iPXE ROM, and what
//! the firmware does is compared with what `rom::analyze_for` predicts for that card.
//!
//! - OVMF: iPXE's EFI driver prints "iPXE" on the serial log when OVMF has loaded it; without
//!   it, OVMF boots its EFI shell ("Shell>").
//! - SeaBIOS: the debug console (port 0x402) says "Running option rom" and then registers the
//!   ROM's boot entry ("Searching bootorder for: /pci@i0cf8/*@2") when it ran the device's ROM;
//!   "Found option rom with bad checksum" when is_valid_rom refused it.
//!
//! Needs qemu-system-x86, ovmf, seabios, ipxe-qemu (tests/install-deps.sh). Missing tools fail
//! under CI=true and print SKIPPED otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vfiotool::rom::{analyze_for, Card};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const IPXE: &str = "/usr/lib/ipxe/qemu/efi-e1000.rom";
/// The emulated e1000 as the firmware sees it.
const E1000: Card = Card {
    vendor_id: 0x8086,
    device_id: 0x100e,
    subsystem_vendor_id: None,
    subsystem_device_id: None,
    class_code: 0x020000,
};

fn tools() -> bool {
    let missing: Vec<&str> = [
        QEMU,
        OVMF_CODE,
        OVMF_VARS,
        IPXE,
        "/usr/share/seabios/bios-256k.bin",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "missing under CI=true: {missing:?} (bash tests/install-deps.sh)"
    );
    eprintln!("SKIPPED: firmware checks need {missing:?} (bash tests/install-deps.sh)");
    false
}

/// A QEMU process killed when dropped, so a failing assertion leaves nothing running.
struct Vm(Child);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll `log` until one of `markers` shows up; returns its index, or None at the deadline.
fn wait_for(log: &Path, markers: &[&str], limit: Duration) -> Option<usize> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(bytes) = std::fs::read(log) {
            let text = String::from_utf8_lossy(&bytes);
            if let Some(i) = markers.iter().position(|m| text.contains(m)) {
                return Some(i);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

fn ovmf_loads_ipxe(dir: &Path, name: &str, rom: &[u8]) -> bool {
    let romfile = dir.join(format!("{name}.rom"));
    let vars = dir.join(format!("{name}.vars"));
    let log = dir.join(format!("{name}.ovmf.log"));
    std::fs::write(&romfile, rom).unwrap();
    std::fs::copy(OVMF_VARS, &vars).unwrap();
    let _vm = Vm(Command::new(QEMU)
        .args([
            "-machine",
            "q35,accel=tcg",
            "-m",
            "256",
            "-display",
            "none",
            "-nodefaults",
            "-no-reboot",
        ])
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars.display()))
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-device")
        .arg(format!("e1000,romfile={}", romfile.display()))
        .args(["-nic", "none"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 starts"));
    match wait_for(&log, &["iPXE", "Shell>"], Duration::from_secs(120)) {
        Some(0) => true,
        Some(_) => false,
        None => panic!(
            "{name}: OVMF reached neither iPXE nor its shell in 120 s; see {}",
            log.display()
        ),
    }
}

/// Some(true) ran, Some(false) not run, with the bad-checksum message as the third state.
fn seabios_runs(dir: &Path, name: &str, rom: &[u8]) -> (bool, bool) {
    let romfile = dir.join(format!("{name}.rom"));
    let log = dir.join(format!("{name}.seabios.log"));
    std::fs::write(&romfile, rom).unwrap();
    let _vm = Vm(Command::new(QEMU)
        .args([
            "-machine",
            "pc,accel=tcg",
            "-m",
            "128",
            "-display",
            "none",
            "-nodefaults",
            "-no-reboot",
        ])
        .arg("-chardev")
        .arg(format!("file,id=dbg,path={}", log.display()))
        .args(["-device", "isa-debugcon,iobase=0x402,chardev=dbg"])
        .arg("-device")
        .arg(format!("e1000,romfile={},addr=2", romfile.display()))
        .args(["-nic", "none"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 starts"));
    // "e820 map" is printed once option ROMs are done.
    wait_for(&log, &["e820 map"], Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "{name}: SeaBIOS did not finish its option ROM scan; see {}",
            log.display()
        )
    });
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    (
        text.contains("Searching bootorder for: /pci@i0cf8/*@2"),
        text.contains("Found option rom with bad checksum"),
    )
}

fn pcir(rom: &[u8], image: usize) -> usize {
    image + usize::from(u16::from_le_bytes([rom[image + 0x18], rom[image + 0x19]]))
}

/// Make the x86 image at 0 sum to 0 over its init size again, as SeaBIOS checks it.
fn fix_x86_checksum(rom: &mut [u8]) {
    let init = usize::from(rom[2]) * 512;
    let sum = rom[..init - 1].iter().fold(0u8, |a, b| a.wrapping_add(*b));
    rom[init - 1] = 0u8.wrapping_sub(sum);
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vfiotool-fw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn ovmf_loads_what_the_model_says() {
    if !tools() {
        return;
    }
    let dir = scratch();
    let orig = std::fs::read(IPXE).unwrap();
    let a = analyze_for(&orig, Some(&E1000)).unwrap();
    let efi = a.images.iter().find(|i| i.code_type == 3).unwrap().offset;
    let (p0, p1) = (pcir(&orig, 0), pcir(&orig, efi));

    // EFI image's PCIR vendor, device and class zeroed, and the x86 image for another device.
    let mut zero = orig.clone();
    zero[p1 + 4..p1 + 8].fill(0);
    zero[p1 + 0x0d..p1 + 0x10].fill(0);
    zero[p0 + 6..p0 + 8].copy_from_slice(&0x1234u16.to_le_bytes());
    // The last-image flag set on the x86 image: the EFI image is never reached.
    let mut last = orig.clone();
    last[p0 + 0x15] |= 0x80;
    // The EFI header claims IA32: current EDK2 no longer reads it (LoadImage goes by the PE).
    let mut ia32 = orig.clone();
    ia32[efi + 0x0a..efi + 0x0c].copy_from_slice(&0x014cu16.to_le_bytes());
    // The PE header (uncompressed in iPXE's ROM) says IA32: X64 OVMF's LoadImage refuses it.
    let mut pe_ia32 = orig.clone();
    let pe = efi + usize::from(u16::from_le_bytes([orig[efi + 0x16], orig[efi + 0x17]]));
    assert_eq!(
        &orig[pe..pe + 2],
        b"MZ",
        "iPXE's EFI driver is stored uncompressed"
    );
    let lfanew = u32::from_le_bytes(orig[pe + 0x3c..pe + 0x40].try_into().unwrap()) as usize;
    pe_ia32[pe + lfanew + 4..pe + lfanew + 6].copy_from_slice(&0x014cu16.to_le_bytes());
    // 0x400 bytes before the first image (as in NVIDIA flash-tool dumps): no 55AA at offset 0.
    let mut prefixed = vec![0u8; 0x400];
    prefixed.extend_from_slice(&orig);

    let mut seen = Vec::new();
    for (name, rom) in [
        ("orig", &orig),
        ("zeroed-ids", &zero),
        ("last-flag", &last),
        ("ia32-header", &ia32),
        ("ia32-pe", &pe_ia32),
        ("prefix", &prefixed),
    ] {
        let model = analyze_for(rom, Some(&E1000)).unwrap();
        let predicted = !model.firmware_view.ovmf.loaded.is_empty() && model.firmware_view.ovmf.rom_accepted;
        let real = ovmf_loads_ipxe(&dir, name, rom);
        seen.push((name, predicted, real));
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("OVMF (name, model loads, OVMF loaded): {seen:?}");
    assert_eq!(
        seen.iter().map(|s| s.2).collect::<Vec<_>>(),
        [true, true, false, true, false, false],
        "what OVMF did"
    );
    for (name, predicted, real) in seen {
        assert_eq!(predicted, real, "{name}: the model and OVMF disagree");
    }
}

#[test]
fn seabios_runs_what_the_model_says() {
    if !tools() {
        return;
    }
    let dir = scratch().join("sb");
    std::fs::create_dir_all(&dir).unwrap();
    let orig = std::fs::read(IPXE).unwrap();
    let p0 = pcir(&orig, 0);
    // The x86 image for another device id (checksum made right again).
    let mut other = orig.clone();
    other[p0 + 6..p0 + 8].copy_from_slice(&0x1234u16.to_le_bytes());
    fix_x86_checksum(&mut other);
    // The same, with a PCIR 3.0 device list naming the card's device (100e).
    let mut listed = other.clone();
    let list = 0x378;
    listed[list..list + 4].copy_from_slice(&[0x0e, 0x10, 0, 0]);
    listed[p0 + 8..p0 + 10].copy_from_slice(&u16::try_from(list - p0).unwrap().to_le_bytes());
    fix_x86_checksum(&mut listed);
    // A byte changed: the checksum is off.
    let mut bad = orig.clone();
    bad[0x200] ^= 0x5a;

    let mut seen = Vec::new();
    for (name, rom) in [
        ("orig", &orig),
        ("other-device", &other),
        ("device-list", &listed),
        ("bad-checksum", &bad),
    ] {
        let model = analyze_for(rom, Some(&E1000)).unwrap();
        let sb = &model.firmware_view.seabios;
        let (ran, bad_sum) = seabios_runs(&dir, name, rom);
        seen.push((name, sb.runs, ran, bad_sum));
        assert_eq!(
            sb.runs, ran,
            "{name}: the model and SeaBIOS disagree ({})",
            sb.reason
        );
        if bad_sum {
            assert!(sb.reason.contains("bad checksum"), "{name}: {}", sb.reason);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("SeaBIOS (name, model runs, SeaBIOS ran, bad checksum logged): {seen:?}");
    assert_eq!(
        seen.iter().map(|s| (s.2, s.3)).collect::<Vec<_>>(),
        [(true, false), (false, false), (false, false), (false, true)],
        "what SeaBIOS did"
    );
}
