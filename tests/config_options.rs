//! The settings the passthrough guides write by hand, through the CLI: the same options and
//! reasons for every target, Proxmox cluster mappings (two nodes, identical cards), bad input
//! refused before anything pasteable is printed, a ROM that cannot be read, and persist's
//! opt-in module options.

mod common;

#[path = "common/pve.rs"]
mod pve;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A host root named pve1 with two identical GPUs, each with its HDMI audio in its own IOMMU
/// group (17:00 in group 1, 65:00 in group 2), and a third identical one (42:00) whose group 3
/// also holds an NVMe drive.
fn host(dir: &Path) -> PathBuf {
    let sys = dir.join("sys");
    for (addr, device, class, driver, group) in [
        ("0000:17:00.0", "0x2204", "0x030000", "nouveau", "1"),
        ("0000:17:00.1", "0x1aef", "0x040300", "snd_hda_intel", "1"),
        ("0000:65:00.0", "0x2204", "0x030000", "nouveau", "2"),
        ("0000:65:00.1", "0x1aef", "0x040300", "snd_hda_intel", "2"),
        ("0000:42:00.0", "0x2204", "0x030000", "nouveau", "3"),
        ("0000:42:00.1", "0x1aef", "0x040300", "snd_hda_intel", "3"),
        ("0000:44:00.0", "0xa808", "0x010802", "nvme", "3"),
    ] {
        let d = sys.join("bus/pci/devices").join(addr);
        fs::create_dir_all(&d).unwrap();
        let vendor = if driver == "nvme" { "0x144d" } else { "0x10de" };
        for (f, v) in [
            ("vendor", vendor),
            ("device", device),
            ("class", class),
            ("subsystem_vendor", vendor),
            ("subsystem_device", "0x1454"),
        ] {
            fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
        let drv = sys.join("bus/pci/drivers").join(driver);
        fs::create_dir_all(&drv).unwrap();
        symlink(&drv, d.join("driver")).unwrap();
        let g = sys.join("kernel/iommu_groups").join(group);
        fs::create_dir_all(g.join("devices")).unwrap();
        symlink(&d, g.join("devices").join(addr)).unwrap();
        symlink(&g, d.join("iommu_group")).unwrap();
    }
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("etc/hostname"), "pve1.example.org\n").unwrap();
    dir.to_path_buf()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn every_target_gets_the_same_settings_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    let mut docs = Vec::new();
    for target in ["proxmox", "libvirt", "qemu"] {
        docs.push(json(&[
            "config",
            "17:00.0",
            "--for",
            target,
            "--firmware",
            "ovmf",
            "--primary",
            "--hide-kvm",
            "--vendor-id",
            "NV43FIX",
            "--rombar",
            "off",
            "--json",
            "--root",
            s(&root),
        ]));
    }
    for d in &docs[1..] {
        assert_eq!(d["options"], docs[0]["options"]);
        assert_eq!(d["functions"], docs[0]["functions"]);
    }
    let names: Vec<&str> = docs[0]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["option"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["functions", "primary", "hide_kvm", "vendor_id", "rombar"]);
    assert!(docs[0]["options"][2]["reason"].as_str().unwrap().contains("465"));
    let [p, l, q] = [&docs[0]["text"], &docs[1]["text"], &docs[2]["text"]].map(|t| t.as_str().unwrap());
    assert!(
        p.contains("cpu: host,hidden=1,hv-vendor-id=NV43FIX\nhostpci0: 0000:17:00,pcie=1,x-vga=1,rombar=0\n"),
        "{p}"
    );
    for part in [
        "<vendor_id state='on' value='NV43FIX'/>",
        "<hidden state='on'/>",
        "<model type='none'/>",
        "<rom bar='off'/>",
    ] {
        assert!(l.contains(part), "{part}: {l}");
    }
    assert!(
        q.contains("-cpu host,kvm=off,hv_relaxed,hv_vendor_id=NV43FIX "),
        "{q}"
    );
    assert!(
        q.contains("multifunction=on,rombar=0 ") && q.ends_with("-vga none"),
        "{q}"
    );

    // Without options: not the boot GPU under OVMF, so not primary; NVIDIA gets the 465 note.
    let d = json(&[
        "config",
        "17:00",
        "--for",
        "qemu",
        "--firmware",
        "ovmf",
        "--json",
        "--root",
        s(&root),
    ]);
    assert_eq!(d["options"][0]["option"], "primary");
    assert_eq!(d["options"][0]["value"], "off");
    assert!(d["options"][1]["reason"]
        .as_str()
        .unwrap()
        .contains("from 465 on"));
    assert!(!d["text"].as_str().unwrap().contains("-vga none"));
}

#[test]
fn a_two_node_mapping_with_identical_cards_as_alternatives() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    // pve2 already has its card in the cluster file.
    let cfg = root.join("etc/pve/mapping");
    fs::create_dir_all(&cfg).unwrap();
    let pve2 = "id=10de:2204,iommugroup=14,node=pve2,path=0000:01:00,subsystem-id=10de:1454";
    fs::write(cfg.join("pci.cfg"), format!("gpu\n\tmap {pve2}\n")).unwrap();
    let o = run(&[
        "config",
        "17:00",
        "--for",
        "proxmox",
        "--mapping",
        "gpu",
        "--firmware",
        "ovmf",
        "--primary",
        "--vmid",
        "101",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let section = format!(
        "gpu\n\tmap {pve2}\n\tmap id=10de:2204,iommugroup=1,node=pve1,path=0000:17:00,subsystem-id=10de:1454\n\tmap id=10de:2204,iommugroup=2,node=pve1,path=0000:65:00,subsystem-id=10de:1454\n"
    );
    assert!(text.contains(&section), "{text}");
    let parsed = pve::mapping_cfg(&section).unwrap();
    assert_eq!(parsed["gpu"].len(), 3);
    assert!(
        text.contains("\nhostpci0: mapping=gpu,pcie=1,x-vga=1\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\npvesh set /cluster/mapping/pci/gpu --map {pve2} --map id=10de:2204,iommugroup=1,"
        )),
        "{text}"
    );
    assert!(text.contains("\nqm set 101 --machine q35 --bios ovmf --hostpci0 mapping=gpu,pcie=1,x-vga=1\n"));
    assert!(
        text.contains(
            "identical card 0000:42:00 left out of the mapping: its IOMMU group also holds 0000:44:00.0"
        ),
        "{text}"
    );
    // A node with no file yet: pvesh create.
    fs::remove_file(cfg.join("pci.cfg")).unwrap();
    let d = json(&[
        "config",
        "17:00",
        "--for",
        "proxmox",
        "--mapping",
        "gpu",
        "--node",
        "pve3",
        "--firmware",
        "ovmf",
        "--json",
        "--root",
        s(&root),
    ]);
    assert_eq!(d["mapping"]["exists"], false);
    assert_eq!(d["mapping"]["node"], "pve3");
    assert!(d["mapping"]["command"].as_str().unwrap().starts_with(
        "pvesh create /cluster/mapping/pci --id gpu --map id=10de:2204,iommugroup=1,node=pve3,"
    ));
}

#[test]
fn bad_input_is_one_line_and_nothing_to_paste() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    let not_a_rom = dir.path().join("notes.txt");
    fs::write(&not_a_rom, "hello\n").unwrap();
    let nvgi = sample("nvidia-nvgi.rom");
    let base = ["config", "17:00", "--firmware", "ovmf", "--root", s(&root)];
    for (extra, exit, says) in [
        (
            vec!["--for", "proxmox", "--hide-kvm", "--vendor-id", "bad id"],
            2,
            "--vendor-id \"bad id\": must be 1 to 12",
        ),
        (
            vec!["--for", "libvirt", "--hide-kvm", "--vendor-id", "thirteenchars"],
            2,
            "at most 12",
        ),
        (vec!["--for", "qemu", "--vendor-id", "abc"], 2, "--hide-kvm"),
        (
            vec!["--for", "proxmox", "--mapping", "1gpu"],
            2,
            "--mapping \"1gpu\": Proxmox rejects it",
        ),
        (vec!["--for", "proxmox", "--mapping", "gpu-1"], 2, "pve-configid"),
        (
            vec!["--for", "proxmox", "--vmid", "99"],
            2,
            "--vmid 99: Proxmox VM ids run from 100",
        ),
        (
            vec!["--for", "proxmox", "--mapping", "gpu", "--node", "pve.lan"],
            2,
            "--node \"pve.lan\"",
        ),
        (
            vec!["--for", "libvirt", "--mapping", "gpu"],
            2,
            "use it with --for proxmox",
        ),
        (
            vec!["--for", "qemu", "--domain", "vm"],
            2,
            "use it with --for libvirt",
        ),
        (
            vec!["--for", "proxmox", "--romfile", s(&not_a_rom)],
            3,
            "not an option ROM",
        ),
        (
            vec!["--for", "proxmox", "--romfile", s(&nvgi)],
            3,
            "vfiotool rom patch",
        ),
        (vec!["--for", "proxmox", "--rombar", "maybe"], 2, "maybe"),
        (
            vec!["--for", "proxmox", "--romfile", "/tmp/my,gpu.rom"],
            2,
            "without `,` or `;`",
        ),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter());
        let o = run(&args);
        assert_eq!(code(&o), exit, "{extra:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{extra:?} printed: {}", stdout(&o));
        assert!(stderr(&o).contains(says), "{extra:?}: {}", stderr(&o));
        // clap's own usage errors come with a usage block; vfiotool's are one line.
        let from_clap = extra.contains(&"maybe") || extra.contains(&"abc");
        if !from_clap {
            assert_eq!(
                stderr(&o).trim_end().lines().count(),
                1,
                "{extra:?}: {}",
                stderr(&o)
            );
        }
        args.push("--json");
        let o = run(&args);
        assert_eq!(code(&o), exit);
        if o.stdout.starts_with(b"{") {
            let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(doc["schema"], "vfiotool.error/1", "{extra:?}");
        }
    }
}

#[test]
fn a_dump_with_an_nvidia_header_becomes_the_patched_romfile() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    let rom = dir.path().join("dump.rom");
    fs::copy(sample("nvidia-nvgi.rom"), &rom).unwrap();
    let o = run(&[
        "config",
        "17:00",
        "--for",
        "proxmox",
        "--rom",
        s(&rom),
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let patched = dir.path().join("dump.patched.rom");
    assert!(
        text.contains(&format!(
            "note: first cut the dump header: vfiotool rom patch {} -o {}",
            rom.display(),
            patched.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\ncp {} /usr/share/kvm/dump.patched.rom\n",
            patched.display()
        )),
        "{text}"
    );
    assert!(text.contains(",romfile=dump.patched.rom\n"), "{text}");
    // And what that command writes is a romfile config accepts.
    let o = rom_patch(&rom, &patched, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(&[
        "config",
        "17:00",
        "--for",
        "qemu",
        "--romfile",
        s(&patched),
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("romfile={}", patched.display())));
}

#[test]
fn an_unreadable_rom_still_gets_a_configuration_from_a_fixture_host() {
    // amd-workstation's boot GPU: its rom attribute reads empty, as a GPU in use may. Reading
    // it writes the enable/disable switch, so it runs on a copy, never on the checked-in tree.
    let dir = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(repo().join("tests/fixtures/host/amd-workstation"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let root = dir.path().join("amd-workstation");
    let d = json(&[
        "config",
        "0b:00.0",
        "--for",
        "libvirt",
        "--json",
        "--root",
        s(&root),
    ]);
    assert_eq!(d["firmware"], "ovmf");
    let why = d["firmware_reason"].as_str().unwrap();
    assert!(
        why.contains("could not be read") && why.contains("--rom gpu.rom"),
        "{why}"
    );
    assert_eq!(
        d["functions"],
        serde_json::json!(["0000:0b:00.0", "0000:0b:00.1"])
    );
    assert_eq!(d["options"][1]["option"], "primary");
    assert_eq!(d["options"][1]["value"], "on", "boot_vga=1");
}

/// The whole human output of `--domain` (its XML comments included) is a file virsh defines.
#[test]
fn libvirt_domain_output_is_a_file_virsh_defines() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    let o = run(&[
        "config",
        "17:00",
        "--for",
        "libvirt",
        "--firmware",
        "seabios",
        "--hide-kvm",
        "--domain",
        "win10",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let file = dir.path().join("win10.xml");
    fs::write(&file, &o.stdout).unwrap();
    for validate in [false, true] {
        let mut cmd = Command::new("virsh");
        cmd.args(["-c", "test:///default", "define"]);
        if validate {
            cmd.arg("--validate");
        }
        let v = cmd
            .arg(&file)
            .output()
            .expect("virsh (libvirt-clients) installed");
        assert!(
            v.status.success(),
            "{}{}\n{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr),
            stdout(&o)
        );
    }
}

#[test]
fn persist_module_options_are_opt_in_and_removed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = host(dir.path());
    fs::create_dir_all(root.join("etc/modprobe.d")).unwrap();
    fs::write(
        root.join("etc/modprobe.d/kvm.conf"),
        "options kvm nx_huge_pages=off\n",
    )
    .unwrap();
    let before = fs::read_dir(root.join("etc/modprobe.d")).unwrap().count();
    let o = run(&["persist", "17:00", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !root.join("etc/modprobe.d/vfiotool-options.conf").exists(),
        "opt-in only"
    );
    let o = run(&[
        "persist",
        "17:00",
        "--kvm-ignore-msrs",
        "--disable-vga",
        "--root",
        s(&root),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o)
        .contains("module options: kvm ignore_msrs=1 report_ignored_msrs=0, vfio-pci disable_vga=1"));
    let conf = fs::read_to_string(root.join("etc/modprobe.d/vfiotool-options.conf")).unwrap();
    assert!(
        conf.contains("\noptions kvm ignore_msrs=1 report_ignored_msrs=0\n"),
        "{conf}"
    );
    assert!(conf.contains("\noptions vfio-pci disable_vga=1\n"), "{conf}");
    // Another device later without the flags keeps them.
    let o = run(&["persist", "65:00", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(root.join("etc/modprobe.d/vfiotool-options.conf").exists());
    let o = run(&["persist", "--remove", "--kvm-ignore-msrs", "--root", s(&root)]);
    assert_eq!(code(&o), 2, "the flags add, --remove takes away: {}", stderr(&o));
    let o = run(&["persist", "--remove", "--root", s(&root)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!root.join("etc/modprobe.d/vfiotool-options.conf").exists());
    assert_eq!(fs::read_dir(root.join("etc/modprobe.d")).unwrap().count(), before);
    assert_eq!(
        fs::read_to_string(root.join("etc/modprobe.d/kvm.conf")).unwrap(),
        "options kvm nx_huge_pages=off\n"
    );
}
