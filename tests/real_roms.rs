//! Real GPU vBIOS dumps from ../shared/real-roms (third-party firmware, never copied into the
//! repo), checked against the reference facts in that folder's README. When the folder is absent
//! (a clone elsewhere), the test says plainly that it skipped them.

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;

fn real_roms() -> Option<PathBuf> {
    let dir = repo().join("../shared/real-roms");
    if dir.is_dir() {
        return Some(dir);
    }
    // CI always has ../shared: a missing folder there is a failure, not a skip.
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is absent under CI=true: the real-ROM checks cannot run",
        dir.display()
    );
    eprintln!(
        "SKIPPED: {} is absent; real-ROM checks did not run",
        dir.display()
    );
    None
}

/// One row of ../shared/real-roms/README.md.
struct Expect {
    file: &'static str,
    prefix: u64,
    /// (offset, code type, vendor, device, class, compressed EFI), in file order, including the
    /// images beyond the last-image flag.
    images: &'static [(u64, u64, u64, u64, u64, bool)],
    /// The README's "x86 checksum" column.
    x86_checksum_ok: bool,
    gop_reachable: bool,
    /// Offsets of the images beyond the last-image flag.
    beyond_last: &'static [u64],
    gop_version: Option<&'static str>,
    /// (vendor, version, part number, build date)
    identity: (&'static str, &'static str, Option<&'static str>, &'static str),
}

const EXPECTED: &[Expect] = &[
    Expect {
        file: "ORIG_W6170M.rom",
        prefix: 0,
        images: &[
            (0, 0, 0x1002, 0x6646, 0x030000, false),
            (0xfc00, 3, 0x1002, 0x6646, 0x030000, true),
        ],
        x86_checksum_ok: true,
        gop_reachable: false,
        beyond_last: &[0xfc00],
        gop_version: None,
        identity: (
            "amd",
            "015.044.000.022.045331",
            Some("BR45331.003"),
            "2014/05/27 14:53",
        ),
    },
    Expect {
        file: "UGA_HD7950_MAC.rom",
        prefix: 0,
        images: &[
            (0, 0, 0x1002, 0x679a, 0x030000, false),
            (0x10000, 3, 0x1002, 0x679a, 0x030000, true),
        ],
        x86_checksum_ok: true,
        gop_reachable: false,
        beyond_last: &[],
        gop_version: None,
        identity: (
            "amd",
            "015.022.000.004.000000",
            Some("113-C3810100-U01"),
            "2012/10/03 06:41",
        ),
    },
    Expect {
        file: "M2200M.rom",
        prefix: 0,
        images: &[
            (0, 0, 0x10de, 0x1436, 0x030000, false),
            (0x1ba00, 3, 0x10de, 0x1436, 0x030000, true),
            (0x1ea00, 3, 0x10de, 0x1436, 0x030000, true),
        ],
        x86_checksum_ok: true,
        gop_reachable: true,
        beyond_last: &[],
        gop_version: Some("0x20010"),
        identity: ("nvidia", "84.06.76.00.1c", None, "07/23/16"),
    },
    Expect {
        file: "sapphire-pulse-rx580-default.rom",
        prefix: 0,
        images: &[
            (0, 0, 0x1002, 0x67df, 0x030000, false),
            (0xec00, 3, 0x1002, 0x67df, 0x030000, true),
        ],
        x86_checksum_ok: true,
        gop_reachable: true,
        beyond_last: &[],
        gop_version: Some("1.65.0.15.50"),
        identity: (
            "amd",
            "015.050.002.001.000000",
            Some("113-1E3870U-O4B"),
            "2017/11/15 01:27",
        ),
    },
    Expect {
        file: "GK107_turbo.rom",
        prefix: 0x400,
        images: &[
            (0x400, 0, 0x10de, 0x0fc6, 0x030000, false),
            (0x10000, 3, 0x10de, 0x0fc6, 0x030000, true),
        ],
        x86_checksum_ok: true,
        gop_reachable: true,
        beyond_last: &[],
        gop_version: Some("0x10038"),
        identity: ("nvidia", "80.07.35.00.f0", None, "02/25/22"),
    },
    Expect {
        file: "nvac_vbios.rom",
        prefix: 0,
        images: &[(0, 0, 0x10de, 0x0861, 0x030000, false)],
        x86_checksum_ok: true,
        gop_reachable: false,
        beyond_last: &[],
        gop_version: None,
        identity: ("nvidia", "62.79.4e.00.01", None, "11/14/08"),
    },
    Expect {
        file: "rtx3060ti-ga104-2489.rom",
        prefix: 0,
        images: &[
            (0, 0, 0x10de, 0x2489, 0x030000, false),
            (0xfe00, 3, 0x10de, 0x2489, 0x000000, true),
        ],
        x86_checksum_ok: false,
        gop_reachable: true,
        beyond_last: &[],
        gop_version: Some("0x60010"),
        identity: ("nvidia", "94.04.6b.00.16", None, "07/14/21"),
    },
    Expect {
        file: "rtx2060-tu106-1f08-techup.rom",
        prefix: 0x28600,
        images: &[
            (0x28600, 0, 0x10de, 0x1f08, 0x030000, false),
            (0x37000, 3, 0x10de, 0x1f08, 0x030000, true),
            (0xa1600, 0, 0x10de, 0x1f08, 0x030000, false),
            (0xb0000, 3, 0x10de, 0x1f08, 0x030000, true),
        ],
        x86_checksum_ok: true,
        gop_reachable: true,
        beyond_last: &[0xa1600, 0xb0000],
        gop_version: Some("0x5000B"),
        identity: ("nvidia", "90.06.30.00.84", None, "12/13/18"),
    },
];

#[test]
fn real_roms_match_the_reference_facts() {
    let Some(dir) = real_roms() else { return };
    assert_eq!(EXPECTED.len(), 8, "one row per dump in the README");
    for e in EXPECTED {
        let doc = parse_json(&dir.join(e.file));
        let f = e.file;
        assert_eq!(doc["prefix_bytes"], e.prefix, "{f}: prefix");
        let imgs = doc["images"].as_array().unwrap();
        assert_eq!(imgs.len(), e.images.len(), "{f}: image count");
        for (img, &(offset, code_type, vendor, device, class, compressed)) in imgs.iter().zip(e.images) {
            assert_eq!(img["offset"], offset, "{f}");
            assert_eq!(img["code_type"], code_type, "{f} at {offset:#x}");
            assert_eq!(
                (img["vendor_id"].as_u64(), img["device_id"].as_u64()),
                (Some(vendor), Some(device)),
                "{f} at {offset:#x}"
            );
            assert_eq!(img["class_code"], class, "{f} at {offset:#x}");
            if code_type == 0 {
                assert_eq!(
                    img["checksum_ok"], e.x86_checksum_ok,
                    "{f}: x86 checksum at {offset:#x}"
                );
            } else {
                let efi = &img["efi"];
                assert_eq!(efi["compressed"], compressed, "{f} at {offset:#x}");
                assert!(efi["decompress_error"].is_null(), "{f} at {offset:#x}: {efi}");
                assert_eq!(efi["pe_ok"], true, "{f} at {offset:#x}: {efi}");
            }
            let beyond = e.beyond_last.contains(&offset);
            assert_eq!(img["reachable"], !beyond, "{f} at {offset:#x}: reachable");
        }
        assert_eq!(doc["verdict"]["uefi_gop"], e.gop_reachable, "{f}: GOP reachable");
        assert_eq!(
            doc["firmware_view"]["ovmf"]["gop_driver"].is_number(),
            e.gop_reachable,
            "{f}: OVMF model"
        );
        let beyond_efi = e
            .beyond_last
            .iter()
            .any(|o| e.images.iter().any(|i| i.0 == *o && i.1 == 3));
        assert_eq!(doc["verdict"]["efi_unreachable"], beyond_efi, "{f}");
        let firmware = if e.gop_reachable { "ovmf" } else { "seabios" };
        assert_eq!(doc["verdict"]["firmware"], firmware, "{f}");
        match e.gop_version {
            Some(v) => assert_eq!(doc["verdict"]["gop_version"], v, "{f}: GOP version"),
            None => assert!(doc["verdict"]["gop_version"].is_null(), "{f}"),
        }
        let id = &doc["identity"];
        let (vendor, version, part, date) = e.identity;
        assert_eq!(id["vendor"], vendor, "{f}: identity");
        assert_eq!(id["version"], version, "{f}: identity version");
        assert_eq!(id["part_number"].as_str(), part, "{f}: part number");
        assert_eq!(id["build_date"], date, "{f}: build date");
        assert_eq!(id["notes"], serde_json::json!([]), "{f}");
    }
}

/// The Ampere dump: EFI image class 0, x86 image off by its checksum. OVMF loads the GOP driver
/// (EDK2 never reads the class); SeaBIOS refuses the x86 image (is_valid_rom's checksum).
#[test]
fn ampere_dump_is_judged_as_the_firmware_does() {
    let Some(dir) = real_roms() else { return };
    let doc = parse_json(&dir.join("rtx3060ti-ga104-2489.rom"));
    let v = &doc["firmware_view"];
    assert_eq!(v["ovmf"]["loaded"], serde_json::json!([1]));
    assert_eq!(v["ovmf"]["efi_images"][0]["gop"], "provides");
    assert_eq!(v["seabios"]["image"], 0);
    assert_eq!(v["seabios"]["runs"], false);
    assert!(v["seabios"]["reason"].as_str().unwrap().contains("bad checksum"));
}

/// The Turing dump: 0x28600 bytes before the first image and a second copy after the last flag.
/// The cut keeps everything from the first image; the result gives the same verdict.
#[test]
fn turing_dump_patches_to_the_same_verdict() {
    let Some(dir) = real_roms() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tu106.rom");
    let input = dir.join("rtx2060-tu106-1f08-techup.rom");
    let o = rom_patch(&input, &out, &["--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = parse_json(&input);
    let after = parse_json(&out);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&input).unwrap()[0x28600..]
    );
    assert_eq!(before["firmware_view"]["ovmf"]["rom_accepted"], false);
    assert_eq!(after["firmware_view"]["ovmf"]["rom_accepted"], true);
    assert_eq!(after["firmware_view"]["seabios"]["runs"], true);
    assert_eq!(after["verdict"]["firmware"], before["verdict"]["firmware"]);
    assert_eq!(after["verdict"]["gop_image"], before["verdict"]["gop_image"]);
    assert_eq!(after["identity"], before["identity"]);
}

#[test]
fn apple_uga_rom_is_ebc_without_gop() {
    let Some(dir) = real_roms() else { return };
    let doc = parse_json(&dir.join("UGA_HD7950_MAC.rom"));
    let efi = &doc["images"][1]["efi"];
    assert_eq!(efi["machine_name"], "ebc");
    assert_eq!(efi["uga_guid"], true);
    assert_eq!(efi["gop"], false);
}

#[test]
fn nvidia_kepler_dump_patches_to_a_valid_rom() {
    let Some(dir) = real_roms() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gk107.rom");
    let input = dir.join("GK107_turbo.rom");
    let o = rom_patch(&input, &out, &["--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["removed_bytes"], 0x400);
    assert_eq!(doc["removed"]["kind"], "nvgi");
    let original = std::fs::read(&input).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), original[0x400..]);
    let patched = parse_json(&out);
    assert_eq!(patched["prefix_bytes"], 0);
    assert_eq!(patched["verdict"]["firmware"], "ovmf");
}

#[test]
fn real_roms_without_header_patch_to_identical_copies() {
    let Some(dir) = real_roms() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("copy.rom");
    let input = dir.join("sapphire-pulse-rx580-default.rom");
    let o = rom_patch(&input, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("no header before the first image"));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&input).unwrap());
}

/// The vendors' own EFI-compressed streams (AMD and NVIDIA GOP drivers, an Apple EBC driver):
/// our decoder's output equals EDK2's C decoder's, byte for byte.
#[test]
fn vendor_compressed_streams_decode_like_edk2() {
    let Some(dir) = real_roms() else { return };
    require_python_module("uefi_firmware.efi_compressor");
    let work = tempfile::tempdir().unwrap();
    let mut ours = Vec::new();
    for e in EXPECTED {
        let bytes = std::fs::read(dir.join(e.file)).unwrap();
        let analysis = vfiotool::rom::analyze(&bytes).unwrap();
        for image in analysis
            .images
            .iter()
            .filter(|i| i.efi.as_ref().is_some_and(|x| x.compressed))
        {
            let efi = image.efi.as_ref().unwrap();
            let start = image.offset + usize::from(efi.pe_offset);
            let end = (image.offset + image.init_size).min(bytes.len());
            let stream = &bytes[start..end];
            let name = format!(
                "{}-{:x}.efi-stream",
                e.file.trim_end_matches(".rom"),
                image.offset
            );
            std::fs::write(work.path().join(&name), stream).unwrap();
            ours.push((
                name,
                vfiotool::rom::decompress::decompress(stream, 64 << 20).unwrap(),
            ));
        }
    }
    assert_eq!(
        ours.len(),
        9,
        "every vendor EFI image in the reference set is compressed"
    );
    let status = std::process::Command::new("python3")
        .arg(repo().join("tests/reference/edk2_codec.py"))
        .arg("batch")
        .arg(work.path())
        .status()
        .unwrap();
    assert!(status.success(), "edk2_codec.py batch failed");
    for (name, decoded) in ours {
        let reference = std::fs::read(work.path().join(format!("{name}.edk2")))
            .unwrap_or_else(|e| panic!("{name}: EDK2 refused the stream ({e})"));
        assert!(decoded == reference, "{name}: our output differs from EDK2's");
        assert_eq!(&decoded[..2], b"MZ", "{name}");
    }
}

/// `rom patch` on every dump: the result starts with an image at 0, is the input from the first
/// image on, and gives the same verdict and identity.
#[test]
fn every_real_dump_patches_to_the_same_verdict() {
    let Some(dir) = real_roms() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for e in EXPECTED {
        let input = dir.join(e.file);
        let out = tmp.path().join(e.file);
        let o = rom_patch(&input, &out, &[]);
        assert_eq!(code(&o), 0, "{}: {}", e.file, stderr(&o));
        let original = std::fs::read(&input).unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            original[e.prefix as usize..],
            "{}",
            e.file
        );
        let (before, after) = (parse_json(&input), parse_json(&out));
        assert_eq!(after["prefix_bytes"], 0, "{}", e.file);
        for field in ["firmware", "uefi_gop", "gop_image", "gop_version"] {
            assert_eq!(
                after["verdict"][field], before["verdict"][field],
                "{}: {field}",
                e.file
            );
        }
        assert_eq!(after["identity"], before["identity"], "{}", e.file);
    }
}
