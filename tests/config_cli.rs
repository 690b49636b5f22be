//! `vfiotool config` and `vfiotool persist` through the CLI, on a synthetic sysfs tree and a
//! scratch root: the firmware choice follows the ROM verdict, group siblings are named, persist's
//! dry run changes nothing and `--remove` restores the root exactly.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A host root with `sys/` holding a GPU (01:00.0 on nouveau, 01:00.1 on snd_hda_intel) and, in
/// the same IOMMU group 1, an unrelated NIC (02:00.0 on e1000e). Returns the root.
fn host(dir: &Path) -> PathBuf {
    let sys = dir.join("sys");
    let devices = sys.join("bus/pci/devices");
    let groups = sys.join("kernel/iommu_groups");
    for (addr, vendor, device, class, driver, group) in [
        ("0000:01:00.0", "0x10de", "0x1c82", "0x030000", "nouveau", "1"),
        (
            "0000:01:00.1",
            "0x10de",
            "0x0fb9",
            "0x040300",
            "snd_hda_intel",
            "1",
        ),
        ("0000:02:00.0", "0x8086", "0x10d3", "0x020000", "e1000e", "1"),
    ] {
        let d = devices.join(addr);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("vendor"), format!("{vendor}\n")).unwrap();
        fs::write(d.join("device"), format!("{device}\n")).unwrap();
        fs::write(d.join("class"), format!("{class}\n")).unwrap();
        let drv = sys.join("bus/pci/drivers").join(driver);
        fs::create_dir_all(&drv).unwrap();
        symlink(&drv, d.join("driver")).unwrap();
        let g = groups.join(group).join("devices");
        fs::create_dir_all(&g).unwrap();
        symlink(&d, g.join(addr)).unwrap();
        symlink(groups.join(group), d.join("iommu_group")).unwrap();
    }
    dir.to_path_buf()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn proxmox_config_follows_the_rom_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    let gop = sample("x86-efi-gop-compressed.rom");
    let o = run(&[
        "config",
        "01:00",
        "--for",
        "proxmox",
        "--vmid",
        "105",
        "--rom",
        s(&gop),
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("\nhostpci0: 0000:01:00,pcie=1\n"), "{text}");
    assert!(
        text.contains("qm set 105 --machine q35 --bios ovmf --hostpci0 0000:01:00,pcie=1"),
        "{text}"
    );
    assert!(text.contains("firmware ovmf, because"), "{text}");
    assert!(text.contains("its IOMMU group also holds 0000:02:00.0"), "{text}");

    let legacy = sample("x86-only.rom");
    let o = run(&[
        "config",
        "01:00",
        "--for",
        "proxmox",
        "--json",
        "--rom",
        s(&legacy),
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema"], "vfiotool.config/1");
    assert_eq!(doc["firmware"], "seabios");
    assert_eq!(doc["x_vga"], true);
    assert_eq!(
        doc["text"],
        "bios: seabios\nmachine: q35\nhostpci0: 0000:01:00,pcie=1,x-vga=1\n"
    );
    assert_eq!(doc["options"][0]["option"], "primary");
    assert!(
        doc["options"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("SeaBIOS draws through legacy VGA"),
        "{}",
        doc["options"]
    );
    assert_eq!(
        doc["functions"],
        serde_json::json!(["0000:01:00.0", "0000:01:00.1"])
    );
    assert_eq!(doc["group_siblings"], serde_json::json!(["0000:02:00.0"]));
}

#[test]
fn libvirt_and_qemu_configs_name_every_function() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    let o = run(&[
        "config",
        "01:00",
        "--for",
        "libvirt",
        "--firmware",
        "ovmf",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o)
            .matches("<hostdev mode='subsystem' type='pci' managed='yes'>")
            .count(),
        2
    );
    assert!(stdout(&o).contains("<os firmware='efi'>"));
    let o = run(&[
        "config",
        "01:00.0",
        "--for",
        "qemu",
        "--firmware",
        "seabios",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    // One function named: the card's other function shares its group, so it comes along.
    assert!(
        text.contains("-device vfio-pci,host=0000:01:00.0,bus=vfio-rp0,addr=00.0,multifunction=on,x-vga=on"),
        "{text}"
    );
    assert!(text.contains("host=0000:01:00.1"), "{text}");
    assert!(
        text.contains("# functions: 0000:01:00.0 0000:01:00.1, because"),
        "{text}"
    );
    assert!(text.contains("group also holds 0000:02:00.0"), "{text}");
    let o = run(&[
        "config",
        "01:00.0",
        "--for",
        "qemu",
        "--firmware",
        "seabios",
        "--only-function",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(!text.contains("host=0000:01:00.1"), "--only-function: {text}");
    assert!(
        text.contains("group also holds 0000:01:00.1, 0000:02:00.0"),
        "{text}"
    );
}

#[test]
fn config_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    // No --rom: the device's own ROM is read; this tree's GPU has no ROM BAR. The
    // configuration still comes, with the firmware assumed and how to know better.
    let o = run(&["config", "01:00", "--for", "proxmox", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("0000:01:00.0/rom"), "{text}");
    assert!(text.contains("OVMF assumed"), "{text}");
    assert!(text.contains("pass --rom gpu.rom"), "{text}");
    assert!(text.contains("\nhostpci0: 0000:01:00,pcie=1\n"), "{text}");
    let o = run(&[
        "config",
        "01:00",
        "--for",
        "proxmox",
        "--sysfs-root",
        s(&root.join("sys")),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("with --sysfs-root alone"), "{}", stderr(&o));
    let o = run(&[
        "config",
        "07:00",
        "--for",
        "proxmox",
        "--firmware",
        "ovmf",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 4);
    assert!(stderr(&o).contains("no PCI device 07:00"), "{}", stderr(&o));
    let o = run(&[
        "config",
        "zz:00",
        "--for",
        "qemu",
        "--firmware",
        "ovmf",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("\"zz:00\" is not a PCI address"),
        "{}",
        stderr(&o)
    );
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("etc"), root.join("usr")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            let content = if p.is_file() {
                fs::read(&p).unwrap()
            } else {
                b"<dir>".to_vec()
            };
            out.push((p.strip_prefix(root).unwrap().display().to_string(), content));
        }
    }
    out.sort();
    out
}

#[test]
fn persist_round_trips_on_a_scratch_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    fs::create_dir_all(root.join("usr/sbin")).unwrap();
    fs::write(root.join("usr/sbin/update-initramfs"), "").unwrap();
    fs::create_dir_all(root.join("etc/modprobe.d")).unwrap();
    fs::write(root.join("etc/modprobe.d/blacklist.conf"), "blacklist nouveau\n").unwrap();
    let before = tree(&root);

    let o = run(&["persist", "01:00", "--dry-run", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("would create /etc/modprobe.d/vfiotool.conf"),
        "{text}"
    );
    assert!(text.contains("+softdep nouveau pre: vfio-pci"), "{text}");
    assert!(text.contains("+softdep snd_hda_intel pre: vfio-pci"), "{text}");
    assert!(
        text.contains("not run below a scratch root: update-initramfs -u -k all"),
        "{text}"
    );
    assert_eq!(tree(&root), before, "--dry-run writes nothing");

    let o = run(&["persist", "01:00", "--yes", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let conf = fs::read_to_string(root.join("etc/modprobe.d/vfiotool.conf")).unwrap();
    assert!(conf.contains("# Devices: 0000:01:00.0 0000:01:00.1"), "{conf}");
    let script = fs::read_to_string(root.join("usr/lib/vfiotool/vfio-pci-override.sh")).unwrap();
    assert!(script.contains("for dev in 0000:01:00.0 0000:01:00.1; do"));
    assert!(root.join("etc/initramfs-tools/hooks/vfiotool").is_file());

    // A second device joins the same files; removing it leaves the first.
    let o = run(&["persist", "02:00.0", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        fs::read_to_string(root.join("usr/lib/vfiotool/vfio-pci-override.sh"))
            .unwrap()
            .contains("0000:02:00.0")
    );
    let o = run(&["persist", "--remove", "02:00.0", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let script = fs::read_to_string(root.join("usr/lib/vfiotool/vfio-pci-override.sh")).unwrap();
    assert!(
        !script.contains("0000:02:00.0") && script.contains("0000:01:00.1"),
        "{script}"
    );

    let o = run(&["persist", "--remove", "--json", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema"], "vfiotool.persist/1");
    assert_eq!(doc["devices"], serde_json::json!([]));
    let after: Vec<_> = tree(&root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("etc/initramfs-tools"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| !p.starts_with("etc/initramfs-tools"))
        .collect();
    assert_eq!(after, before, "--remove undoes exactly what persist wrote");
    assert!(!root.join("etc/initramfs-tools/hooks/vfiotool").exists());
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let o = run(&["completions", "bash"]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("complete -F _vfiotool"),
        "bash completion function"
    );
    for sh in ["zsh", "fish"] {
        let o = run(&["completions", sh]);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).contains("persist"), "{sh} completes subcommands");
    }
    let o = run(&["manpage"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with(".ie"), "roff output");
    assert!(stdout(&o).contains("vfiotool"));
    // One page per command, named as `man` looks them up.
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["manpage", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for page in [
        "vfiotool",
        "vfiotool-rom-parse",
        "vfiotool-bind",
        "vfiotool-persist",
        "vfiotool-check",
    ] {
        let roff = fs::read_to_string(dir.path().join(format!("{page}.1"))).unwrap();
        assert!(
            roff.contains(&format!(".TH {page} 1")),
            "{page}: {}",
            &roff[..roff.len().min(200)]
        );
    }
    let parse = fs::read_to_string(dir.path().join("vfiotool-rom-parse.1")).unwrap();
    assert!(
        parse.contains("require\\-gop") && parse.contains("Examples:"),
        "{parse}"
    );
}

/// A captured tree is untrusted input and never written: `config --root` reads the capture's
/// `rom` file as it is (no "1"/"0" enable writes, which used to overwrite what was captured), and a
/// FIFO in its place is refused at once instead of waited on.
#[test]
fn a_captured_rom_is_never_written_and_a_fifo_never_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("sys/bus/pci/devices/0000:01:00.0");
    fs::create_dir_all(&dev).unwrap();
    for (f, v) in [("vendor", "0x10de"), ("device", "0x1c82"), ("class", "0x030000")] {
        fs::write(dev.join(f), v).unwrap();
    }
    let root = dir.path().to_str().unwrap().to_string();
    let captured = b"not a ROM, but what the capture saved".to_vec();
    fs::write(dev.join("rom"), &captured).unwrap();
    let o = run(&["config", "01:00.0", "--for", "qemu", "--root", &root]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        fs::read(dev.join("rom")).unwrap(),
        captured,
        "the capture was written"
    );
    assert!(stdout(&o).contains("OVMF assumed"), "{}", stdout(&o));

    fs::remove_file(dev.join("rom")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dev.join("rom"))
        .status()
        .unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    let piped = run(&["config", "01:00.0", "--for", "qemu", "--root", &root]);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(code(&piped), 0, "{}", stderr(&piped));
    assert!(
        stdout(&piped).contains("not a regular file") && stdout(&piped).contains("OVMF assumed"),
        "{}",
        stdout(&piped)
    );
    assert!(!stderr(&piped).contains("waiting for"), "{}", stderr(&piped));
}

#[test]
fn a_captured_schema_or_hostname_that_is_a_fifo_is_never_waited_on() {
    // `config --iommufd --for libvirt` reads the libvirt schema and `--mapping` the host name
    // from the capture: both through the bounded reader, so FIFOs there cannot hang it.
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("sys/bus/pci/devices/0000:01:00.0");
    fs::create_dir_all(&dev).unwrap();
    for (f, v) in [("vendor", "0x10de"), ("device", "0x1c82"), ("class", "0x030000")] {
        fs::write(dev.join(f), v).unwrap();
    }
    let schemas = dir.path().join("usr/share/libvirt/schemas");
    fs::create_dir_all(&schemas).unwrap();
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    for fifo in [schemas.join("domaincommon.rng"), dir.path().join("etc/hostname")] {
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
    }
    let root = dir.path().to_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let o = run(&[
        "config",
        "01:00.0",
        "--for",
        "libvirt",
        "--iommufd",
        "--firmware",
        "ovmf",
        "--root",
        &root,
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("no iommufd attribute"), "{}", stdout(&o));
    let started = std::time::Instant::now();
    let o = run(&[
        "config",
        "01:00.0",
        "--for",
        "proxmox",
        "--mapping",
        "gpu",
        "--firmware",
        "ovmf",
        "--root",
        &root,
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "nothing pasteable: {}", stdout(&o));
}
