//! `vfiotool list`, `groups`, `check` and `capture` on synthetic host trees
//! (tests/fixtures/host/, written by generate.py there): hosts we cannot boot here.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, copy_tree, run, stderr, stdout};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/host").join(name)
}

fn fixture_str(name: &str) -> String {
    fixture(name).to_str().expect("utf-8 path").to_string()
}

fn ids() -> String {
    fixture_str("pci.ids")
}

/// Run and parse the one JSON document, asserting the exit code.
fn json(args: &[&str], want_code: i32) -> Value {
    let o = run(args);
    assert_eq!(code(&o), want_code, "{args:?}: {}{}", stdout(&o), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&o)))
}

fn check_status<'a>(doc: &'a Value, id: &str) -> (&'a str, &'a str, Option<&'a str>) {
    let c = doc["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {doc}"));
    (
        c["status"].as_str().expect("status"),
        c["message"].as_str().expect("message"),
        c["fix"].as_str(),
    )
}

fn variant(name: &str, edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(name), dir.path());
    for (rel, text) in edits {
        let p = dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn list_json_schema_and_fields() {
    let doc = json(
        &[
            "list",
            "--json",
            "--pci-ids",
            &ids(),
            "--root",
            &fixture_str("amd-workstation"),
        ],
        0,
    );
    assert_eq!(doc["schema"], "vfiotool.list/1");
    let devices = doc["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 12);
    let gpu = devices.iter().find(|d| d["address"] == "0000:0a:00.0").unwrap();
    assert_eq!(gpu["vendor_id"], 0x1002);
    assert_eq!(gpu["device_id"], 0x73bf);
    assert_eq!(gpu["class_code"], 0x030000);
    assert_eq!(gpu["revision"], 0xc1);
    assert_eq!(gpu["driver"], "vfio-pci");
    assert_eq!(gpu["iommu_group"], 20);
    assert_eq!(gpu["bridge"], false);
    assert_eq!(gpu["boot_vga"], false);
    assert_eq!(gpu["rom"], true);
    assert_eq!(gpu["reset_methods"], serde_json::json!(["bus"]));
    assert_eq!(gpu["vendor_name"], "Advanced Micro Devices, Inc. [AMD/ATI]");
    assert_eq!(gpu["device_name"], "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]");
    assert_eq!(gpu["class_name"], "VGA compatible controller");
    assert_eq!(gpu["subsystem_vendor_name"], "Sapphire Technology Limited");
    assert_eq!(
        gpu["modules"],
        serde_json::json!(["amdgpu"]),
        "from lib/modules/<release>/modules.alias"
    );
    let lpc = devices.iter().find(|d| d["address"] == "0000:00:14.3").unwrap();
    assert_eq!(lpc["driver"], Value::Null, "unbound is null");
    let port = devices.iter().find(|d| d["address"] == "0000:00:01.1").unwrap();
    assert_eq!(port["bridge"], true);
    // Sorted like lspci.
    let addrs: Vec<&str> = devices.iter().map(|d| d["address"].as_str().unwrap()).collect();
    let mut sorted = addrs.clone();
    sorted.sort();
    assert_eq!(addrs, sorted);
}

#[test]
fn list_without_iommu_has_null_groups() {
    let doc = json(&["list", "--json", "--root", &fixture_str("no-iommu")], 0);
    for d in doc["devices"].as_array().unwrap() {
        assert_eq!(d["iommu_group"], Value::Null, "{d}");
    }
}

#[test]
fn list_filters() {
    let root = fixture_str("intel-4gpu-acs");
    let addrs = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["list", "--json", "--root", &root];
        full.extend_from_slice(args);
        let doc = json(&full, 0);
        doc["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["address"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        addrs(&["--class", "gpu"]),
        ["0000:00:02.0", "0000:17:00.0", "0000:42:00.0", "0000:43:00.0"]
    );
    assert_eq!(
        addrs(&["--class", "audio"]),
        ["0000:00:1f.3", "0000:17:00.1", "0000:42:00.1"]
    );
    assert_eq!(addrs(&["--class", "storage"]), ["0000:44:00.0"]);
    assert_eq!(addrs(&["--class", "usb"]), ["0000:00:14.0"]);
    assert!(addrs(&["--class", "net"]).is_empty());
    assert_eq!(addrs(&["42:00"]), ["0000:42:00.0", "0000:42:00.1"]);
    assert_eq!(addrs(&["0000:42:00.1"]), ["0000:42:00.1"]);
    assert_eq!(
        addrs(&["--group", "1"]),
        ["0000:00:01.0", "0000:17:00.0", "0000:17:00.1"]
    );
    assert_eq!(
        addrs(&["--group", "30", "--class", "gpu"]),
        ["0000:42:00.0", "0000:43:00.0"]
    );
}

#[test]
fn list_vmd_domain_10000() {
    let root = fixture_str("intel-vmd");
    let doc = json(&["list", "--json", "--root", &root, "10000:e1:00.0"], 0);
    let d = &doc["devices"][0];
    assert_eq!(d["address"], "10000:e1:00.0");
    assert_eq!(d["driver"], "nvme");
    assert_eq!(d["iommu_group"], 9);
    // Human output switches to full addresses, as lspci does with several domains.
    let o = run(&["list", "--root", &root, "--pci-ids", &ids()]);
    let text = stdout(&o);
    assert!(
        text.contains("\n10000:e0:1d.0 PCI bridge [0604]: Intel Corporation Device [8086:09ab]"),
        "{text}"
    );
    assert!(text.starts_with("0000:00:00.0 "), "{text}");
}

#[test]
fn list_unknown_device_or_group_is_a_usage_error() {
    let root = fixture_str("amd-workstation");
    let o = run(&["list", "--root", &root, "05:00.0"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no PCI device 0000:05:00.0 under"),
        "{}",
        stderr(&o)
    );
    let o = run(&["list", "--root", &root, "--group", "99"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("IOMMU group 99"), "{}", stderr(&o));
    let o = run(&["list", "--root", &root, "1:2:3:4"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("expected DDDD:BB:DD.F"), "{}", stderr(&o));
}

#[test]
fn list_missing_tree_names_the_path() {
    let o = run(&["list", "--sysfs-root", "/nonexistent/tree"]);
    assert_eq!(code(&o), 4);
    assert!(
        stderr(&o).contains("/nonexistent/tree/bus/pci/devices"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn list_human_names_and_numeric_fallback() {
    let root = fixture_str("amd-workstation");
    let o = run(&["list", "--root", &root, "--pci-ids", &ids(), "0a:00.0"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        "0a:00.0 VGA compatible controller [0300]: Advanced Micro Devices, Inc. [AMD/ATI] Navi 21 [Radeon RX 6800/6800 XT / 6900 XT] [1002:73bf] (rev c1)\n\
         \tSubsystem: Sapphire Technology Limited Device [1da2:440e]\n\
         \tKernel driver in use: vfio-pci\n\
         \tKernel modules: amdgpu\n\
         \tIOMMU group: 20 | Reset: bus | Boot VGA: no | ROM: yes\n"
    );
    let empty = tempfile::NamedTempFile::new().unwrap();
    let o = run(&[
        "list",
        "--root",
        &root,
        "--pci-ids",
        empty.path().to_str().unwrap(),
        "03:00.0",
    ]);
    let text = stdout(&o);
    assert!(
        text.starts_with("03:00.0 Non-Volatile memory controller [0108]: Device [144d:a80a]\n\tSubsystem: Device [144d:a801]\n"),
        "{text}"
    );
}

#[test]
fn list_sysfs_root_alone_reads_only_sysfs_from_the_tree() {
    let sys = fixture("intel-vmd/sys");
    let o = run(&["list", "--json", "--sysfs-root", sys.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["devices"].as_array().unwrap().len(), 8);
}

/// The title, Subsystem and driver lines equal what lspci -nnk prints for the same tree.
#[test]
fn list_matches_lspci_lines() {
    let Ok(version) = Command::new("lspci").arg("--version").output() else {
        panic!("lspci is missing: run tests/install-deps.sh (pciutils)");
    };
    assert!(version.status.success());
    for name in [
        "amd-workstation",
        "intel-4gpu-acs",
        "guest-host_view",
        "guest-intremap_off",
    ] {
        let sys = fixture(name).join("sys");
        let lspci = Command::new("lspci")
            .args(["-nnk", "-A", "linux-sysfs", "-O"])
            .arg(format!("sysfs.path={}", sys.join("bus/pci").display()))
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(
            lspci.status.success(),
            "{}",
            String::from_utf8_lossy(&lspci.stderr)
        );
        // Keep only lines both tools print (lspci's "Kernel modules" needs libkmod for the
        // running kernel, which the synthetic tree does not describe).
        let keep = |l: &&str| !l.contains("Kernel modules:") && !l.contains("IOMMU group:");
        let theirs: Vec<String> = String::from_utf8_lossy(&lspci.stdout)
            .lines()
            .filter(keep)
            .map(str::to_string)
            .collect();
        let ours_o = run(&["list", "--sysfs-root", sys.to_str().unwrap()]);
        let ours_text = stdout(&ours_o);
        let ours: Vec<&str> = ours_text.lines().filter(keep).collect();
        assert_eq!(ours, theirs, "{name}");
        assert!(!theirs.is_empty());
    }
}

#[test]
fn groups_verdicts_amd() {
    let doc = json(
        &["groups", "--json", "--root", &fixture_str("amd-workstation")],
        0,
    );
    assert_eq!(doc["schema"], "vfiotool.groups/1");
    assert_eq!(doc["iommu"], true);
    let verdict = |n: u64| {
        doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == n)
            .unwrap()["verdict"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verdict(20), "isolated", "GPU + its audio are one slot");
    assert_eq!(verdict(1), "isolated_except_bridges");
    assert_eq!(verdict(15), "isolated", "two functions of one chipset slot");
    let g20 = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == 20)
        .unwrap();
    assert_eq!(g20["devices"][0]["address"], "0000:0a:00.0");
    assert_eq!(
        g20["devices"][0]["vendor_id"], 0x1002,
        "same device objects as list"
    );
    assert!(doc["ungrouped"].as_array().unwrap().is_empty());
}

#[test]
fn groups_shared_acs_group_names_host_critical() {
    let root = fixture_str("intel-4gpu-acs");
    let doc = json(&["groups", "--json", "--root", &root], 0);
    let g30 = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == 30)
        .unwrap();
    assert_eq!(g30["verdict"], "shared");
    assert_eq!(
        g30["slots"],
        serde_json::json!(["0000:42:00", "0000:43:00", "0000:44:00"])
    );
    assert_eq!(
        g30["host_critical"],
        serde_json::json!([{"address": "0000:44:00.0", "role": "storage controller"}])
    );
    let g1 = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == 1)
        .unwrap();
    assert_eq!(g1["verdict"], "isolated_except_bridges");
    let o = run(&["groups", "--root", &root, "--pci-ids", &ids()]);
    let text = stdout(&o);
    assert!(
        text.contains("IOMMU group 30: shared by 3 slots: 42:00, 43:00, 44:00; host-critical: 44:00.0 storage controller\n"),
        "{text}"
    );
    assert!(
        text.contains("IOMMU group 1: isolated except bridges\n"),
        "{text}"
    );
}

#[test]
fn groups_vmd_and_no_iommu() {
    let doc = json(&["groups", "--json", "--root", &fixture_str("intel-vmd")], 0);
    let g9 = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == 9)
        .unwrap();
    let addrs: Vec<&str> = g9["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, ["0000:00:0e.0", "10000:e0:1d.0", "10000:e1:00.0"]);
    assert_eq!(g9["verdict"], "shared");
    let doc = json(&["groups", "--json", "--root", &fixture_str("no-iommu")], 0);
    assert_eq!(doc["iommu"], false);
    assert!(doc["groups"].as_array().unwrap().is_empty());
    assert_eq!(doc["ungrouped"].as_array().unwrap().len(), 6);
    let o = run(&["groups", "--root", &fixture_str("no-iommu")]);
    assert!(
        stdout(&o).starts_with("No IOMMU group (the IOMMU is off: see `vfiotool check`):\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_ready_amd_workstation() {
    let doc = json(&["check", "--json", "--root", &fixture_str("amd-workstation")], 0);
    assert_eq!(doc["schema"], "vfiotool.check/1");
    assert_eq!(doc["ready"], true);
    for id in [
        "kvm",
        "iommu",
        "cmdline",
        "interrupt_remapping",
        "vfio_modules",
        "bootloader",
        "vfio_pci_options",
    ] {
        assert_eq!(check_status(&doc, id).0, "ok", "{id}: {doc}");
    }
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "kvm",
            "iommu",
            "cmdline",
            "interrupt_remapping",
            "unsafe_interrupts",
            "vfio_modules",
            "vfio_pci_options",
            "blacklist",
            "acs_override",
            "framebuffer",
            "boot_vga",
            "bootloader",
            "initramfs",
            "stale_driver",
            "blacklist_lines",
            "kvm_msrs",
            "reset",
            "d3cold",
            "bars",
            "kernel_log",
            "iommu_faults",
            "log_interrupt_remapping",
            "log_bar_reserve",
            "log_acs_override",
            "log_rmrr",
            "iommufd",
            "iommufd_qemu",
            "iommufd_libvirt"
        ]
    );
    assert!(check_status(&doc, "interrupt_remapping").1.contains("IR-PCI-MSI"));
    assert!(check_status(&doc, "interrupt_remapping").1.contains("not tested"));
    assert_eq!(doc["bootloader"]["kind"], "grub");
}

#[test]
fn check_no_iommu_fails_with_kernelstub_fix() {
    let o = run(&["check", "--json", "--root", &fixture_str("no-iommu")]);
    assert_eq!(code(&o), 1, "a needed check failed");
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ready"], false);
    let (status, msg, fix) = check_status(&doc, "iommu");
    assert_eq!(status, "fail");
    assert!(msg.contains("/sys/class/iommu is empty"), "{msg}");
    assert!(
        fix.unwrap()
            .contains("sudo kernelstub -a \"intel_iommu=on iommu=pt\""),
        "{fix:?}"
    );
    assert_eq!(check_status(&doc, "cmdline").0, "fail");
    assert_eq!(check_status(&doc, "interrupt_remapping").0, "fail");
    let (status, msg, fix) = check_status(&doc, "vfio_modules");
    assert_eq!(status, "warn");
    assert!(msg.contains("vfio_pci loadable"), "{msg}");
    assert!(fix.unwrap().contains("remove vfio_virqfd from /etc/modules"));
    assert_eq!(doc["bootloader"]["kind"], "kernelstub");
}

#[test]
fn check_acs_workstation_warnings() {
    let doc = json(&["check", "--json", "--root", &fixture_str("intel-4gpu-acs")], 0);
    let (status, msg, fix) = check_status(&doc, "vfio_pci_options");
    assert_eq!(status, "warn");
    assert!(
        msg.contains("claims 2 identical devices: 0000:17:00.0, 0000:42:00.0"),
        "{msg}"
    );
    assert!(fix.unwrap().contains("vfiotool bind"));
    let (status, msg, fix) = check_status(&doc, "framebuffer");
    assert_eq!(status, "warn");
    assert!(msg.contains("efifb") && msg.contains("0000:00:02.0"), "{msg}");
    let fix = fix.unwrap();
    assert!(
        fix.contains("initcall_blacklist=sysfb_init") && fix.contains("update-grub"),
        "{fix}"
    );
    assert!(check_status(&doc, "interrupt_remapping")
        .1
        .contains("ecap IR bit set on 2 of 2"));
}

#[test]
fn check_vmd_unsafe_interrupts_and_proxmox() {
    let doc = json(&["check", "--json", "--root", &fixture_str("intel-vmd")], 0);
    let (status, msg, _) = check_status(&doc, "interrupt_remapping");
    assert_eq!(status, "warn", "works only through allow_unsafe_interrupts");
    assert!(msg.contains("ecap IR bit clear"), "{msg}");
    let (status, msg, fix) = check_status(&doc, "unsafe_interrupts");
    assert_eq!(status, "warn");
    assert!(msg.contains("a guest can send arbitrary MSIs"), "{msg}");
    assert!(fix
        .unwrap()
        .contains("/etc/modprobe.d/iommu_unsafe_interrupts.conf"));
    let (status, _, fix) = check_status(&doc, "bootloader");
    assert_eq!(status, "warn", "iommu=pt configured but not booted");
    assert!(fix.unwrap().contains("proxmox-boot-tool refresh"));
    assert_eq!(doc["bootloader"]["kind"], "proxmox_boot_tool");
}

#[test]
fn check_intremap_off_fails_without_unsafe() {
    let t = variant(
        "intel-4gpu-acs",
        &[
            (
                "proc/cmdline",
                "BOOT_IMAGE=/vmlinuz ro quiet intel_iommu=on iommu=pt intremap=off\n",
            ),
            ("proc/interrupts", "   0:   34   IO-APIC    2-edge      timer\n"),
        ],
    );
    let root = t.path().to_str().unwrap();
    let o = run(&["check", "--json", "--root", root]);
    assert_eq!(code(&o), 1);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (status, msg, fix) = check_status(&doc, "interrupt_remapping");
    assert_eq!(status, "fail");
    assert!(msg.contains("intremap=off") && msg.contains("EPERM"), "{msg}");
    let fix = fix.unwrap();
    assert!(
        fix.contains("remove intremap=off") && fix.contains("allow_unsafe_interrupts=1"),
        "{fix}"
    );
    // The human view says the same, one line per check.
    let o = run(&["check", "--root", root]);
    let text = stdout(&o);
    assert!(
        text.contains("FAIL interrupt_remapping  not available: intremap=off"),
        "{text}"
    );
    assert!(
        text.ends_with("not ready: a needed check failed (see the fixes above)\n"),
        "{text}"
    );
}

#[test]
fn check_acs_override_and_iommu_off_args() {
    let t = variant(
        "amd-workstation",
        &[(
            "proc/cmdline",
            "ro quiet amd_iommu=on iommu=pt pcie_acs_override=downstream,multifunction\n",
        )],
    );
    let doc = json(&["check", "--json", "--root", t.path().to_str().unwrap()], 0);
    let (status, msg, fix) = check_status(&doc, "acs_override");
    assert_eq!(status, "warn");
    assert!(msg.contains("peer-to-peer DMA"), "{msg}");
    assert!(fix
        .unwrap()
        .contains("remove pcie_acs_override=downstream,multifunction"));

    let t = variant("no-iommu", &[("proc/cmdline", "ro quiet intel_iommu=off\n")]);
    let doc = json(&["check", "--json", "--root", t.path().to_str().unwrap()], 1);
    let (status, msg, fix) = check_status(&doc, "cmdline");
    assert_eq!(status, "fail");
    assert!(msg.contains("intel_iommu=off"), "{msg}");
    assert!(fix.unwrap().contains("sudo kernelstub -d \"intel_iommu=off\""));
}

#[test]
fn check_missing_vfio_module_fails() {
    let t = variant(
        "no-iommu",
        &[(
            "lib/modules/6.8.0-45-generic/modules.dep",
            "kernel/arch/x86/kvm/kvm.ko.zst:\n",
        )],
    );
    let doc = json(&["check", "--json", "--root", t.path().to_str().unwrap()], 1);
    let (status, msg, _) = check_status(&doc, "vfio_modules");
    assert_eq!(status, "fail");
    assert!(
        msg.contains("the kernel has no vfio, vfio_iommu_type1, vfio_pci"),
        "{msg}"
    );
}

#[test]
fn capture_round_trips_every_view() {
    for name in [
        "amd-workstation",
        "intel-4gpu-acs",
        "intel-vmd",
        "no-iommu",
        "misconfigured",
    ] {
        let out = tempfile::tempdir().unwrap();
        let dst = out.path().join("tree");
        let dst_s = dst.to_str().unwrap();
        let src = fixture_str(name);
        let summary = json(&["capture", "--json", "--root", &src, dst_s], 0);
        assert_eq!(summary["schema"], "vfiotool.capture/1");
        assert!(summary["skipped"].as_array().unwrap().is_empty(), "{summary}");
        assert!(dst.join("vfiotool-capture.json").is_file());
        // bus/pci/devices entries stay symlinks into sys/devices.
        let entry = fs::read_dir(dst.join("sys/bus/pci/devices"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(entry.file_type().unwrap().is_symlink());
        let ids = ids();
        let view = |cmd: &str, root: &str| -> Value {
            let mut args = vec![cmd, "--json", "--root", root];
            if cmd != "check" {
                args.extend(["--pci-ids", ids.as_str()]);
            }
            let want = if cmd == "check" && name == "no-iommu" {
                1
            } else {
                0
            };
            json(&args, want)
        };
        for cmd in ["list", "groups", "check"] {
            let (a, b) = (view(cmd, &src), view(cmd, dst_s));
            assert_eq!(a, b, "{name} {cmd}: the captured tree reads differently");
        }
        assert!(!view("list", dst_s)["devices"].as_array().unwrap().is_empty());
    }
}

#[test]
fn capture_refuses_a_non_empty_directory() {
    let out = tempfile::tempdir().unwrap();
    fs::write(out.path().join("x"), "keep me").unwrap();
    let o = run(&[
        "capture",
        "--root",
        &fixture_str("no-iommu"),
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("exists and is not empty"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(out.path().join("x")).unwrap(), "keep me");
}

// Trees captured by `vfiotool capture` from the real kernel in the QEMU guest
// (tests/guest/scenarios/{host_view,intremap_off}; imported by import-guest-capture.sh).

#[test]
fn guest_capture_groups_bridge_and_shared() {
    let doc = json(
        &["groups", "--json", "--root", &fixture_str("guest-host_view")],
        0,
    );
    let groups = doc["groups"].as_array().unwrap();
    let addrs = |g: &Value| -> Vec<String> {
        g["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["address"].as_str().unwrap().to_string())
            .collect()
    };
    let shared = groups
        .iter()
        .find(|g| addrs(g).contains(&"0000:00:06.0".to_string()))
        .unwrap();
    assert_eq!(addrs(shared), ["0000:00:06.0", "0000:01:01.0", "0000:01:02.0"]);
    assert_eq!(shared["verdict"], "shared");
    assert_eq!(
        shared["devices"][0]["bridge"], true,
        "the kernel's config space says header type 1"
    );
    let single = groups
        .iter()
        .find(|g| addrs(g).contains(&"0000:00:07.0".to_string()))
        .unwrap();
    assert_eq!(addrs(single), ["0000:00:07.0", "0000:02:01.0"]);
    assert_eq!(single["verdict"], "isolated_except_bridges");
    let ich9 = groups
        .iter()
        .find(|g| addrs(g).contains(&"0000:00:1f.0".to_string()))
        .unwrap();
    assert_eq!(ich9["verdict"], "isolated", "three functions of one slot");
}

#[test]
fn guest_capture_boot_vga_and_check() {
    let root = fixture_str("guest-host_view");
    let doc = json(&["list", "--json", "--root", &root, "00:02.0"], 0);
    let vga = &doc["devices"][0];
    assert_eq!(vga["class_code"], 0x030000);
    assert_eq!(vga["boot_vga"], true);
    assert_eq!(vga["rom"], true);
    assert_eq!(vga["driver"], Value::Null);
    let doc = json(&["check", "--json", "--root", &root], 1);
    assert_eq!(check_status(&doc, "kvm").0, "fail", "the guest has no /dev/kvm");
    assert_eq!(check_status(&doc, "iommu").0, "ok");
    let (status, msg, _) = check_status(&doc, "interrupt_remapping");
    assert_eq!(status, "ok");
    assert!(
        msg.contains("IR-PCI-MSI") && msg.contains("ecap IR bit set on 1 of 1"),
        "{msg}"
    );
    assert_eq!(check_status(&doc, "vfio_modules").0, "ok");
}

#[test]
fn guest_capture_intremap_off_fails_interrupt_remapping() {
    let doc = json(
        &["check", "--json", "--root", &fixture_str("guest-intremap_off")],
        1,
    );
    assert_eq!(check_status(&doc, "iommu").0, "ok");
    let (status, msg, fix) = check_status(&doc, "interrupt_remapping");
    assert_eq!(status, "fail");
    assert!(
        msg.contains("ecap IR bit clear") && msg.contains("EPERM"),
        "{msg}"
    );
    assert!(fix.unwrap().contains("allow_unsafe_interrupts=1"));
}

/// `capture` of this machine's live /sys, /proc and /etc reads back identically.
#[test]
fn capture_live_host_round_trips() {
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("live");
    let dst_s = dst.to_str().unwrap();
    let o = run(&["capture", dst_s]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("read it back with: vfiotool check --root"));
    for cmd in ["list", "groups"] {
        let live = json(&[cmd, "--json"], 0);
        let captured = json(&[cmd, "--json", "--root", dst_s], 0);
        assert_eq!(live, captured, "{cmd}");
    }
    let live = run(&["check", "--json"]);
    let captured = run(&["check", "--json", "--root", dst_s]);
    assert_eq!(code(&live), code(&captured));
    let statuses = |o: &std::process::Output| -> Vec<(String, String)> {
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            // The installed QEMU and libvirt are software, not host state: a capture does not
            // carry them (under --root those two checks are skipped).
            .filter(|(id, _)| id != "iommufd_qemu" && id != "iommufd_libvirt")
            .collect()
    };
    assert_eq!(statuses(&live), statuses(&captured));
}

/// `vfiotool list | head -0`: the reader is gone before anything is written; the write fails
/// with EPIPE and the tool exits 0 without a word on stderr.
#[test]
fn list_into_a_closed_pipe_exits_quietly() {
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    for cmd in ["list", "groups", "check"] {
        let w = write_end.try_clone().unwrap();
        let o = Command::new(common::bin())
            .args([cmd, "--root", &fixture_str("amd-workstation")])
            .stdout(std::process::Stdio::from(w))
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{cmd}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{cmd}");
    }
}

/// Every entry under `root`, sorted: relative path and its file bytes, link target, or "dir".
fn tree_listing(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let ft = entry.file_type().unwrap();
            let what = if ft.is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if ft.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else {
                format!("{:?}", fs::read(&path).unwrap())
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

/// The checked-in synthetic trees are exactly what generate.py writes (so they can be changed
/// by editing the generator, never by hand).
#[test]
fn synthetic_fixtures_match_their_generator() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("python3")
        .arg(fixture("generate.py"))
        .arg("--out")
        .arg(out.path())
        .status()
        .expect("python3 runs generate.py");
    assert!(status.success());
    for name in [
        "amd-workstation",
        "intel-4gpu-acs",
        "intel-vmd",
        "no-iommu",
        "misconfigured",
    ] {
        let fresh = tree_listing(&out.path().join(name));
        assert!(fresh.len() > 50, "{name}: {} entries", fresh.len());
        assert_eq!(
            tree_listing(&fixture(name)),
            fresh,
            "{name}: rerun tests/fixtures/host/generate.py"
        );
    }
}

/// With i915 on the boot GPU and no framebuffer platform driver bound, the efifb name left in
/// /proc/iomem is not a problem.
#[test]
fn check_framebuffer_replaced_by_drm_driver_is_ok() {
    let t = variant("intel-4gpu-acs", &[]);
    fs::remove_dir_all(t.path().join("sys/bus/platform/drivers/efi-framebuffer")).unwrap();
    let doc = json(&["check", "--json", "--root", t.path().to_str().unwrap()], 0);
    let (status, msg, fix) = check_status(&doc, "framebuffer");
    assert_eq!(status, "ok");
    assert!(msg.starts_with("i915 drives the boot GPU"), "{msg}");
    assert_eq!(fix, None);
}

/// A captured tree is untrusted: a FIFO in place of a device's `config` and `class` or of
/// `proc/cmdline` must not hang `list`, `groups` or `check`, and the one unreadable device is a
/// note while the others are listed.
#[test]
fn a_fifo_in_a_capture_never_hangs_and_one_bad_device_is_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    for a in ["0000:00:01.0", "0000:00:02.0"] {
        let d = t.join("sys/devices/pci0000:00").join(a);
        fs::create_dir_all(&d).unwrap();
        fs::create_dir_all(t.join("sys/bus/pci/devices")).unwrap();
        for (f, v) in [("vendor", "0x1b36"), ("device", "0x0010"), ("class", "0x010802")] {
            fs::write(d.join(f), v).unwrap();
        }
        std::os::unix::fs::symlink(&d, t.join("sys/bus/pci/devices").join(a)).unwrap();
    }
    let bad = t.join("sys/devices/pci0000:00/0000:00:02.0");
    fs::remove_file(bad.join("class")).unwrap();
    fs::create_dir_all(t.join("proc")).unwrap();
    for f in [bad.join("config"), bad.join("class"), t.join("proc/cmdline")] {
        assert!(Command::new("mkfifo").arg(&f).status().unwrap().success());
    }
    let root = t.to_str().unwrap();
    let started = std::time::Instant::now();
    let o = run(&["list", "--root", root, "--pci-ids", &ids()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("00:01.0"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("0000:00:02.0 could not be read") && stderr(&o).contains("not a regular file"),
        "{}",
        stderr(&o)
    );
    let doc = json(&["groups", "--root", root, "--pci-ids", &ids(), "--json"], 0);
    assert_eq!(doc["unreadable"][0]["address"], "0000:00:02.0", "{doc}");
    let c = run(&["check", "--root", root, "--json"]);
    assert!(code(&c) != 101, "{}", stderr(&c));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
