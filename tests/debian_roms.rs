//! Open ROMs from Debian packages (installed by tests/install-deps.sh): iPXE's combined
//! x86 + EFI network ROMs and SeaBIOS's x86-only VGA BIOSes.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn roms(dir: &str, prefix: &str, package: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}: install Debian's {package} (bash tests/install-deps.sh)"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no {prefix}* in {dir}: install {package}");
    found
}

#[test]
fn ipxe_efi_roms_are_network_drivers_not_gop() {
    for rom in roms("/usr/lib/ipxe/qemu", "efi-", "ipxe-qemu") {
        let doc = parse_json(&rom);
        let imgs = doc["images"].as_array().unwrap();
        let name = rom.display();
        assert_eq!(doc["prefix_bytes"], 0, "{name}");
        assert_eq!(imgs[0]["code_type"], 0, "{name}: x86 PXE image first");
        let efi: Vec<_> = imgs.iter().filter(|i| i["code_type"] == 3).collect();
        assert_eq!(efi.len(), 1, "{name}: one EFI image");
        let e = efi[0];
        assert_eq!(
            e["class_code"].as_u64().unwrap() >> 16,
            0x02,
            "{name}: network class"
        );
        assert_eq!(e["reachable"], true, "{name}");
        assert_eq!(e["efi"]["pe_ok"], true, "{name}: {}", e["efi"]);
        assert_eq!(e["efi"]["gop"], false, "{name}");
        assert_eq!(doc["verdict"]["uefi_gop"], false);
        assert_eq!(doc["verdict"]["display"], false);
        let o = run(&["rom", "parse", rom.to_str().unwrap()]);
        assert!(
            stdout(&o).contains(
                "OVMF loads it: x64 driver: loaded and started; names GOP, but this is a network ROM"
            ),
            "{name}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn seabios_vga_bioses_are_x86_only_and_mean_seabios() {
    for rom in roms("/usr/share/seabios", "vgabios-", "seabios") {
        if NOT_PCI.iter().any(|n| rom.ends_with(n)) {
            continue; // no PCIR: see non_pci_vga_bioses_have_no_pcir_and_are_refused
        }
        let doc = parse_json(&rom);
        let name = rom.display();
        let imgs = doc["images"].as_array().unwrap();
        assert!(imgs.iter().all(|i| i["code_type"] == 0), "{name}: x86 only");
        assert_eq!(
            imgs[0]["class_code"].as_u64().unwrap() >> 16,
            0x03,
            "{name}: display class"
        );
        assert_eq!(imgs[0]["checksum_ok"], true, "{name}");
        assert_eq!(doc["verdict"]["firmware"], "seabios", "{name}");
        let o = run(&["rom", "parse", "--require-gop", rom.to_str().unwrap()]);
        assert_eq!(code(&o), 1, "{name}: no GOP -> verdict not met");
        assert!(stdout(&o).contains("no reachable GOP -> SeaBIOS"));
    }
    assert!(Path::new("/usr/share/seabios/vgabios-stdvga.bin").exists());
}

/// SeaBIOS's VGA BIOSes for devices that are not PCI (ISA VGA, ramfb) carry no PCIR record.
const NOT_PCI: &[&str] = &["vgabios-isavga.bin", "vgabios-ramfb.bin"];

#[test]
fn non_pci_vga_bioses_have_no_pcir_and_are_refused() {
    for name in NOT_PCI {
        let rom = format!("/usr/share/seabios/{name}");
        let o = run(&["rom", "parse", &rom]);
        assert_eq!(code(&o), 3);
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{name}: no option ROM image")), "{err}");
        assert!(err.contains("no \"PCIR\" at 0x0 (PCIR pointer 0x0)"), "{err}");
    }
}
