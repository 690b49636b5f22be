//! `rom parse` and `rom patch` on the project's generated samples: the JSON contract, the
//! verdicts, exit codes, and the patch safety rules.

mod common;

use common::*;
use serde_json::Value;
use std::fs;

fn images(doc: &Value) -> &Vec<Value> {
    doc["images"].as_array().expect("images array")
}

#[test]
fn x86_only_rom_means_seabios() {
    let doc = parse_json(&sample("x86-only.rom"));
    assert_eq!(doc["schema"], "vfiotool.rom/1");
    assert_eq!(doc["size"], 32768);
    assert_eq!(doc["prefix_bytes"], 0);
    let imgs = images(&doc);
    assert_eq!(imgs.len(), 1);
    let i = &imgs[0];
    assert_eq!(
        (i["offset"].as_u64(), i["length"].as_u64()),
        (Some(0), Some(0x8000))
    );
    assert_eq!(i["code_type"], 0);
    assert_eq!(
        (i["vendor_id"].as_u64(), i["device_id"].as_u64()),
        (Some(0x1234), Some(0x1111))
    );
    assert_eq!(i["class_code"], 0x030000);
    assert_eq!(i["last"], true);
    assert_eq!(i["reachable"], true);
    assert_eq!(i["checksum_ok"], true);
    assert!(i["efi"].is_null());
    let v = &doc["verdict"];
    assert_eq!(
        (v["uefi_gop"].as_bool(), v["legacy_x86"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(v["firmware"], "seabios");
}

fn assert_gop_driver(doc: &Value, compressed: bool) {
    let imgs = images(doc);
    assert_eq!(imgs.len(), 2);
    let efi = &imgs[1]["efi"];
    assert_eq!(imgs[1]["code_type"], 3);
    assert_eq!(efi["machine"], 0x8664);
    assert_eq!(efi["compressed"], compressed);
    assert_eq!(efi["pe_ok"], true, "{efi}");
    assert_eq!(efi["gop"], true);
    assert_eq!(efi["gop_version"], "1.2.3.4");
    assert_eq!(efi["pe"]["subsystem"], 11);
    assert_eq!(doc["verdict"]["uefi_gop"], true);
    assert_eq!(doc["verdict"]["firmware"], "ovmf");
}

#[test]
fn uncompressed_gop_driver_means_ovmf() {
    assert_gop_driver(&parse_json(&sample("x86-efi-gop.rom")), false);
}

#[test]
fn compressed_gop_driver_is_decompressed_and_means_ovmf() {
    let plain = parse_json(&sample("x86-efi-gop.rom"));
    let doc = parse_json(&sample("x86-efi-gop-compressed.rom"));
    assert_gop_driver(&doc, true);
    // The same PE went into both samples: the decoded driver has the same headers.
    assert_eq!(images(&doc)[1]["efi"]["pe"], images(&plain)[1]["efi"]["pe"]);
}

#[test]
fn ebc_uga_driver_is_efi_but_no_gop() {
    let doc = parse_json(&sample("efi-uga-ebc.rom"));
    let efi = &images(&doc)[1]["efi"];
    assert_eq!(efi["machine"], 0x0EBC);
    assert_eq!(efi["machine_name"], "ebc");
    assert_eq!(efi["uga_guid"], true);
    assert_eq!(efi["gop"], false);
    assert_eq!(doc["verdict"]["firmware"], "seabios");
    let o = run(&["rom", "parse", sample("efi-uga-ebc.rom").to_str().unwrap()]);
    assert!(
        stdout(&o).contains("OVMF loads it: ebc compressed driver: loaded and started; installs no GOP: a UGA-only (Apple) driver"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn image_after_last_flag_is_unreachable() {
    let doc = parse_json(&sample("efi-after-last.rom"));
    let imgs = images(&doc);
    assert_eq!(imgs.len(), 2);
    assert_eq!(imgs[0]["last"], true);
    assert_eq!(imgs[1]["reachable"], false);
    assert_eq!(
        imgs[1]["efi"]["gop"], true,
        "it is a GOP driver, just not reachable"
    );
    assert_eq!(
        doc["firmware_view"]["ovmf"]["efi_images"][0]["outcome"],
        "not_reached"
    );
    assert_eq!(doc["firmware_view"]["ovmf"]["walked"], serde_json::json!([0]));
    assert_eq!(doc["verdict"]["uefi_gop"], false);
    assert_eq!(doc["verdict"]["efi_unreachable"], true);
    let o = run(&["rom", "parse", sample("efi-after-last.rom").to_str().unwrap()]);
    assert!(
        stdout(&o).contains(
            "OVMF never reaches it: its walk stops before it (last-image flag on the image at 0x0)"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_checksum_is_reported_not_rejected() {
    let doc = parse_json(&sample("bad-checksum.rom"));
    let i = &images(&doc)[0];
    assert_eq!(i["checksum_ok"], false);
    assert_ne!(i["checksum"], 0);
    // SeaBIOS's is_valid_rom refuses it (etc/optionroms-checksum defaults to 1 under QEMU).
    assert_eq!(doc["firmware_view"]["seabios"]["image"], 0);
    assert_eq!(doc["firmware_view"]["seabios"]["runs"], false);
    assert_eq!(doc["verdict"]["firmware"], "none");
    let o = run(&["rom", "parse", sample("bad-checksum.rom").to_str().unwrap()]);
    assert!(
        stdout(&o).contains("SeaBIOS refuses it (\"bad checksum\""),
        "{}",
        stdout(&o)
    );
}

#[test]
fn truncated_dump_says_so() {
    let doc = parse_json(&sample("truncated.rom"));
    let imgs = images(&doc);
    assert_eq!(imgs[1]["truncated"], true);
    assert_eq!(doc["chain_end"], "truncated");
    assert_eq!(doc["verdict"]["truncated"], true);
    let o = run(&["rom", "parse", sample("truncated.rom").to_str().unwrap()]);
    assert!(
        stdout(&o).contains("dump looks truncated (UEFI part missing)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn network_efi_driver_naming_gop_is_not_a_gop_driver() {
    let doc = parse_json(&sample("net-efi.rom"));
    let efi = &images(&doc)[1]["efi"];
    assert_eq!(efi["gop_guid"], true);
    assert_eq!(efi["gop"], false, "class 02 is not display");
    assert_eq!(doc["verdict"]["display"], false);
    assert_eq!(doc["verdict"]["uefi_gop"], false);
    let o = run(&["rom", "parse", sample("net-efi.rom").to_str().unwrap()]);
    let ovmf = &doc["firmware_view"]["ovmf"]["efi_images"][0];
    assert_eq!(ovmf["outcome"], "loaded", "OVMF does start it");
    assert_eq!(ovmf["gop"], "uses_only");
    assert!(
        stdout(&o).contains("names GOP, but this is a network ROM (first image class 020000)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn nvidia_dump_header_is_found_and_named() {
    let doc = parse_json(&sample("nvidia-nvgi.rom"));
    assert_eq!(
        doc["prefix_bytes"], 0x600,
        "the stray 55AA at 0x400 is not an image"
    );
    assert_eq!(doc["prefix"]["kind"], "nvgi");
    assert_eq!(doc["verdict"]["nvidia_header"], true);
    let imgs = images(&doc);
    assert_eq!(imgs[0]["vendor_id"], 0x10DE);
    assert_eq!(imgs[1]["npde"]["version"], 0x30012);
    assert_eq!(imgs[1]["efi"]["gop_version"], "0x30012");
    assert_eq!(doc["verdict"]["firmware"], "ovmf");
    let o = run(&["rom", "parse", sample("nvidia-nvgi.rom").to_str().unwrap()]);
    assert!(stdout(&o).contains("NVIDIA header present"), "{}", stdout(&o));
}

#[test]
fn require_gop_sets_the_verdict_exit_code() {
    let gop = sample("x86-efi-gop.rom");
    let no_gop = sample("x86-only.rom");
    assert_eq!(
        code(&run(&["rom", "parse", "--require-gop", gop.to_str().unwrap()])),
        0
    );
    assert_eq!(
        code(&run(&["rom", "parse", "--require-gop", no_gop.to_str().unwrap()])),
        1
    );
    // Several files: one document each, and the exit code is the worst.
    let o = run(&[
        "rom",
        "parse",
        "--json",
        "--require-gop",
        gop.to_str().unwrap(),
        no_gop.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o).lines().count(), 2);
}

#[test]
fn stdin_is_read_with_a_dash() {
    let data = fs::read(sample("x86-efi-gop.rom")).unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["rom", "parse", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["file"], "<stdin>");
    assert_eq!(doc["verdict"]["firmware"], "ovmf");
}

#[test]
fn patch_cuts_the_nvidia_header_and_never_touches_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dump.rom");
    fs::copy(sample("nvidia-nvgi.rom"), &input).unwrap();
    let before = fs::read(&input).unwrap();
    let out = dir.path().join("fixed.rom");
    let o = rom_patch(&input, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("removed 1536 bytes before the first image: NVIDIA NVGI header"),
        "{}",
        stdout(&o)
    );
    let patched = fs::read(&out).unwrap();
    assert_eq!(patched, before[0x600..]);
    assert_eq!(fs::read(&input).unwrap(), before, "input unchanged");
    let doc = parse_json(&out);
    assert_eq!(doc["prefix_bytes"], 0);
    assert_eq!(doc["verdict"]["nvidia_header"], false);
    assert_eq!(doc["verdict"]["firmware"], "ovmf");

    // An existing OUT is kept without --force, replaced with it.
    fs::write(&out, b"keep me").unwrap();
    let o = rom_patch(&input, &out, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("exists; pass --force"), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), b"keep me");
    let o = rom_patch(&input, &out, &["--force"]);
    assert_eq!(code(&o), 0);
    assert_eq!(fs::read(&out).unwrap(), before[0x600..]);

    // OUT == IN is refused, also spelled differently.
    let same = dir.path().join(".").join("dump.rom");
    let o = rom_patch(&input, &same, &["--force"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("never writes in place"));
    assert_eq!(fs::read(&input).unwrap(), before);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temp files left: {names:?}");
}

#[test]
fn patch_refuses_inputs_that_would_not_give_a_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.rom");
    for (name, needle) in [
        ("truncated.rom", "truncated dump"),
        ("../Cargo.toml", "no option ROM image"),
    ] {
        let o = rom_patch(&sample(name), &out, &[]);
        assert_eq!(code(&o), 3, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("nothing written"));
        assert!(!out.exists(), "{name}: no output file");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no temp files left");
}

#[test]
fn patch_fixes_x86_checksums_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fixed.rom");
    let input = sample("bad-checksum.rom");
    let o = rom_patch(&input, &out, &["--fix-checksum"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("fixed checksum of image 0: byte 0x7fff"),
        "{}",
        stdout(&o)
    );
    let fixed = fs::read(&out).unwrap();
    let orig = fs::read(&input).unwrap();
    let changed: Vec<usize> = (0..orig.len()).filter(|&i| orig[i] != fixed[i]).collect();
    assert_eq!(changed, vec![0x7fff]);
    assert_eq!(images(&parse_json(&out))[0]["checksum_ok"], true);
}

#[test]
fn patch_dry_run_and_json_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fixed.rom");
    let o = run(&[
        "rom",
        "patch",
        "--dry-run",
        "--json",
        sample("nvidia-nvgi.rom").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema"], "vfiotool.patch/1");
    assert_eq!(doc["written"], false);
    assert_eq!(doc["removed_bytes"], 0x600);
    assert_eq!(doc["removed"]["kind"], "nvgi");
    assert!(!out.exists());
}

#[test]
fn samples_are_reproduced_by_the_generator() {
    require_python_module("uefi_firmware.efi_compressor");
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .arg(repo().join("rom-samples/generate.py"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut count = 0;
    for entry in fs::read_dir(repo().join("rom-samples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rom") {
            let name = path.file_name().unwrap();
            let fresh = fs::read(dir.path().join(name)).unwrap_or_default();
            assert!(
                fs::read(&path).unwrap() == fresh,
                "{name:?} differs from the generator's output"
            );
            count += 1;
        }
    }
    assert_eq!(count, 15, "every sample is checked");
}

/// Kepler/Maxwell (NVGI 0x600), Pascal (0xa00) and Turing-style (0x4600, with the header's
/// offset field holding 0x24 as real Turing dumps do) headers: the cut comes from the PCIR
/// check, never from that field, and the patched ROM keeps every image.
#[test]
fn patch_cuts_every_nvidia_generation_by_pcir_not_by_the_header_field() {
    let dir = tempfile::tempdir().unwrap();
    for (name, prefix, image_count, gop_version) in [
        ("nvidia-nvgi.rom", 0x600usize, 2usize, "0x30012"),
        ("nvidia-pascal-style.rom", 0xa00, 2, "0x30012"),
        ("nvidia-turing-style.rom", 0x4600, 3, "0x5000B"),
    ] {
        let input = sample(name);
        let original = fs::read(&input).unwrap();
        let field = u32::from_le_bytes(original[0x14..0x18].try_into().unwrap()) as usize;
        let out = dir.path().join(name);
        let o = rom_patch(&input, &out, &["--json"]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            doc["removed_bytes"], prefix,
            "{name} (header field says {field:#x})"
        );
        assert_eq!(fs::read(&out).unwrap(), original[prefix..], "{name}");
        let patched = parse_json(&out);
        assert_eq!(patched["prefix_bytes"], 0, "{name}");
        assert_eq!(images(&patched).len(), image_count, "{name}");
        assert_eq!(patched["chain_end"], "last_flag", "{name}");
        assert_eq!(patched["verdict"]["gop_version"], gop_version, "{name}");
        assert_eq!(patched["verdict"]["firmware"], "ovmf", "{name}");
    }
    let turing = parse_json(&sample("nvidia-turing-style.rom"));
    let fw = &images(&turing)[2];
    assert_eq!(
        (fw["code_type"].as_u64(), fw["code_type_name"].as_str()),
        (Some(0xE0), Some("nvidia_fw"))
    );
    assert_eq!(fw["reachable"], true);
}

/// A sysfs tree with one PCI function whose config space holds these ids and class.
fn fake_sysfs(vendor: u16, device: u16, class: u32, subsystem: (u16, u16)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("bus/pci/devices/0000:01:00.0");
    fs::create_dir_all(&dev).unwrap();
    let mut config = vec![0u8; 64];
    config[0..2].copy_from_slice(&vendor.to_le_bytes());
    config[2..4].copy_from_slice(&device.to_le_bytes());
    config[9..12].copy_from_slice(&class.to_le_bytes()[..3]);
    config[0x2c..0x2e].copy_from_slice(&subsystem.0.to_le_bytes());
    config[0x2e..0x30].copy_from_slice(&subsystem.1.to_le_bytes());
    fs::write(dev.join("config"), config).unwrap();
    dir
}

fn parse_for(rom: &str, sysfs: &std::path::Path, json: bool) -> std::process::Output {
    let path = sample(rom);
    let mut args = vec!["rom", "parse", "--device", "01:00.0", "--sysfs-root"];
    args.push(sysfs.to_str().unwrap());
    if json {
        args.push("--json");
    }
    args.push(path.to_str().unwrap());
    run(&args)
}

#[test]
fn ampere_style_zero_class_efi_image_is_a_gop_driver() {
    let doc = parse_json(&sample("nvidia-ampere-style.rom"));
    let efi_img = &images(&doc)[1];
    assert_eq!(efi_img["class_code"], 0);
    assert_eq!(efi_img["vendor_id"], 0);
    assert_eq!(efi_img["efi"]["gop"], true);
    let ovmf = &doc["firmware_view"]["ovmf"];
    assert_eq!(ovmf["rom_accepted"], true);
    assert_eq!(ovmf["loaded"], serde_json::json!([1]));
    assert_eq!(ovmf["gop_driver"], 1);
    assert_eq!(ovmf["efi_images"][0]["gop"], "provides");
    assert_eq!(doc["verdict"]["firmware"], "ovmf");
    assert_eq!(doc["verdict"]["gop_version"], "0x60010");
}

#[test]
fn blackwell_style_prefix_firmware_images_and_second_copy() {
    let doc = parse_json(&sample("nvidia-blackwell-style.rom"));
    assert_eq!(doc["prefix_bytes"], 0x34200);
    assert_eq!(doc["prefix"]["kind"], "unknown");
    let imgs = images(&doc);
    let types: Vec<u64> = imgs.iter().map(|i| i["code_type"].as_u64().unwrap()).collect();
    assert_eq!(types, [0xe0, 0xe0, 0, 3, 0xe0, 0xe0, 0, 3]);
    let reachable: Vec<bool> = imgs.iter().map(|i| i["reachable"].as_bool().unwrap()).collect();
    assert_eq!(reachable, [true, true, true, true, false, false, false, false]);
    let v = &doc["firmware_view"];
    assert_eq!(v["ovmf"]["rom_accepted"], false, "as given, no 55AA at offset 0");
    assert_eq!(v["ovmf"]["judged_after_cut"], true);
    assert_eq!(v["ovmf"]["walked"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(v["ovmf"]["gop_driver"], 3);
    assert_eq!(v["seabios"]["image"], 2);
    assert_eq!(v["seabios"]["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(doc["verdict"]["nvidia_header"], true);
    assert_eq!(doc["verdict"]["efi_unreachable"], true);
    // The second copy is byte for byte the first: the same driver, decompressed once.
    assert_eq!(imgs[7]["efi"], imgs[3]["efi"]);
    assert_eq!(imgs[7]["efi"]["gop"], true);

    // A copy that differs in one byte of its compressed driver gets its own analysis.
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(sample("nvidia-blackwell-style.rom")).unwrap();
    let second = imgs[7]["offset"].as_u64().unwrap() as usize;
    let payload = second + imgs[7]["efi"]["pe_offset"].as_u64().unwrap() as usize;
    bytes[payload + 200] ^= 0xFF;
    let changed = tmp.path().join("changed.rom");
    fs::write(&changed, &bytes).unwrap();
    let doc2 = parse_json(&changed);
    let imgs2 = images(&doc2);
    assert_eq!(imgs2[3]["efi"], imgs[3]["efi"]);
    assert_ne!(
        imgs2[7]["efi"], imgs[7]["efi"],
        "a changed copy must be analysed itself"
    );

    let out = tmp.path().join("gb.rom");
    let o = rom_patch(&sample("nvidia-blackwell-style.rom"), &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let input = fs::read(sample("nvidia-blackwell-style.rom")).unwrap();
    assert_eq!(
        fs::read(&out).unwrap(),
        input[0x34200..],
        "the cut keeps the whole chain"
    );
    let patched = parse_json(&out);
    assert_eq!(patched["prefix_bytes"], 0);
    assert_eq!(patched["firmware_view"]["ovmf"]["rom_accepted"], true);
    assert_eq!(patched["firmware_view"]["ovmf"]["gop_driver"], 3);
    assert_eq!(patched["firmware_view"]["seabios"]["image"], 2);
    assert_eq!(patched["firmware_view"]["seabios"]["runs"], true);
    assert_eq!(patched["verdict"]["firmware"], doc["verdict"]["firmware"]);
}

#[test]
fn mismatched_ids_get_their_own_verdict_line() {
    let sys = fake_sysfs(0x10de, 0x2489, 0x030000, (0x1458, 0x4053));
    let o = parse_for("mismatched-ids.rom", sys.path(), true);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &doc["device_match"];
    assert_eq!(m["matches"], false);
    assert_eq!(m["rom"], "10de:2484");
    assert_eq!(m["card"]["device_id"], 0x2489);
    assert_eq!(m["card"]["subsystem_vendor_id"], 0x1458);
    assert_eq!(doc["firmware_view"]["seabios"]["ids_from"], "device");
    assert_eq!(doc["firmware_view"]["seabios"]["runs"], false);
    assert_eq!(
        doc["firmware_view"]["ovmf"]["gop_driver"], 1,
        "OVMF never reads the ids"
    );
    assert_eq!(doc["verdict"]["firmware"], "ovmf");
    let o = parse_for("mismatched-ids.rom", sys.path(), false);
    let text = stdout(&o);
    assert!(
        text.contains("SeaBIOS will skip the x86 image: it is for 10de:2484, the card is 10de:2489"),
        "{text}"
    );
    // The same ROM for its own card matches.
    let own = fake_sysfs(0x10de, 0x2484, 0x030000, (0, 0));
    let doc: Value =
        serde_json::from_slice(&parse_for("mismatched-ids.rom", own.path(), true).stdout).unwrap();
    assert_eq!(doc["device_match"]["matches"], true);
    assert_eq!(doc["firmware_view"]["seabios"]["runs"], true);
    // Without --device there is no device_match at all.
    assert!(parse_json(&sample("mismatched-ids.rom"))
        .get("device_match")
        .is_none());
}

#[test]
fn pcir3_device_list_is_reported_but_seabios_compares_the_pcir_device_only() {
    let doc = parse_json(&sample("pcir3-device-list.rom"));
    assert_eq!(
        images(&doc)[0]["device_list"],
        serde_json::json!([0x2489, 0x2486])
    );
    let sys = fake_sysfs(0x10de, 0x2489, 0x030000, (0, 0));
    let o = parse_for("pcir3-device-list.rom", sys.path(), true);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["device_match"]["matches"], false);
    assert_eq!(doc["device_match"]["in_device_list_only"], true);
    assert_eq!(doc["firmware_view"]["seabios"]["runs"], false);
    assert_eq!(doc["verdict"]["firmware"], "none");
    let text = stdout(&parse_for("pcir3-device-list.rom", sys.path(), false));
    assert!(
        text.contains("SeaBIOS compares only the PCIR device id"),
        "{text}"
    );
}

#[test]
fn network_card_class_makes_a_gop_naming_driver_a_consumer() {
    // The GOP judgement uses the card's class when the device is known.
    let net = fake_sysfs(0x8086, 0x100e, 0x020000, (0, 0));
    let doc: Value = serde_json::from_slice(&parse_for("x86-efi-gop.rom", net.path(), true).stdout).unwrap();
    assert_eq!(doc["firmware_view"]["ovmf"]["efi_images"][0]["gop"], "uses_only");
    assert_eq!(doc["verdict"]["uefi_gop"], false);
}

#[test]
fn rom_parse_device_errors_name_the_path() {
    let empty = tempfile::tempdir().unwrap();
    let o = parse_for("x86-only.rom", empty.path(), false);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("0000:01:00.0"), "{}", stderr(&o));
}
