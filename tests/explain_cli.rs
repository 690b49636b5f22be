//! `vfiotool explain` end to end: every record of the corpus of real error messages
//! (tests/fixtures/explain/corpus.txt, each with the URL it was posted at) gives the expected
//! cause ids in ranked order; fixes read the host trees under tests/fixtures/host; binary,
//! empty and huge input are refused or bounded.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{code, run, stderr, stdout};
use serde_json::Value;

const IDS: [&str; 10] = [
    "no_iommu",
    "no_interrupt_remapping",
    "rmrr",
    "group_not_viable",
    "vfio_not_bound",
    "device_busy",
    "bar_reserve",
    "dma_map_memory",
    "reset_failed",
    "rom_problem",
];

fn host(name: &str) -> String {
    common::repo()
        .join("tests/fixtures/host")
        .join(name)
        .to_str()
        .expect("utf-8")
        .to_string()
}

struct Record {
    expect: Vec<String>,
    source: String,
    text: String,
}

fn corpus() -> Vec<Record> {
    let path = common::repo().join("tests/fixtures/explain/corpus.txt");
    let text = fs::read_to_string(&path).expect("corpus.txt");
    let mut out = Vec::new();
    for block in text.split("\n=== expect: ").skip(1) {
        let (head, rest) = block.split_once('\n').expect("expect line");
        let (src, body) = rest.split_once('\n').expect("source line");
        let source = src.strip_prefix("source: ").expect("a source: line").to_string();
        let expect = if head.trim() == "none" {
            Vec::new()
        } else {
            head.trim().split(',').map(str::to_string).collect()
        };
        out.push(Record {
            expect,
            source,
            text: body.to_string(),
        });
    }
    out
}

fn explain_text(text: &str, root: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("log.txt");
    fs::write(&f, text).unwrap();
    let o = run(&["explain", "--json", "--root", root, f.to_str().unwrap()]);
    let doc: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(&o), stderr(&o)));
    (code(&o), doc)
}

fn ids(doc: &Value) -> Vec<String> {
    doc["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

fn cause<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {doc}"))
}

#[test]
fn corpus_of_real_messages() {
    let records = corpus();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut none = 0;
    for r in &records {
        assert!(
            r.source.starts_with("https://") || r.source.starts_with("../shared/"),
            "every record names where it comes from: {}",
            r.source
        );
        let (rc, doc) = explain_text(&r.text, &host("amd-workstation"));
        assert_eq!(doc["schema"], "vfiotool.explain/1");
        let got = ids(&doc);
        assert_eq!(got, r.expect, "{}\n{}", r.source, r.text);
        assert_eq!(rc, if r.expect.is_empty() { 1 } else { 0 }, "{}", r.source);
        for c in doc["causes"].as_array().unwrap() {
            for k in ["evidence", "explanation", "fix"] {
                assert!(!c[k].as_str().unwrap().is_empty(), "{k} empty: {c}");
            }
        }
        if r.expect.is_empty() {
            none += 1;
        }
        if r.expect.len() == 1 {
            *per_id.entry(r.expect[0].clone()).or_default() += 1;
        }
    }
    for id in IDS {
        let n = per_id.get(id).copied().unwrap_or(0);
        // bar_reserve: only two public posts with the line were found in the searchable
        // index (docs/explain.md says so); every other cause has three or more.
        let want = if id == "bar_reserve" { 2 } else { 3 };
        assert!(n >= want, "{id}: only {n} real messages in the corpus");
    }
    assert!(none >= 3, "only {none} messages that match no cause");
}

#[test]
fn fixes_read_the_host() {
    // Group 30 of intel-4gpu-acs: 43:00.0 still on nouveau, an NVMe the host boots from.
    let (_, d) = explain_text(
        "vfio 0000:42:00.0: group 30 is not viable\n",
        &host("intel-4gpu-acs"),
    );
    let fix = cause(&d, "group_not_viable")["fix"].as_str().unwrap();
    assert!(fix.contains("0000:43:00.0") && fix.contains("nouveau"), "{fix}");
    assert!(fix.contains("0000:44:00.0") && fix.contains("nvme"), "{fix}");
    assert!(fix.contains("storage controller"), "{fix}");
    // A group this host does not have.
    let (_, d) = explain_text("group 77 is not viable\n", &host("intel-4gpu-acs"));
    assert!(cause(&d, "group_not_viable")["fix"]
        .as_str()
        .unwrap()
        .contains("IOMMU group 77 is not on this host"));
    // No interrupt remapping on the VMD host, where allow_unsafe_interrupts is set already.
    let (_, d) = explain_text(
        "vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform\n",
        &host("intel-vmd"),
    );
    let fix = cause(&d, "no_interrupt_remapping")["fix"].as_str().unwrap();
    assert!(fix.contains("allow_unsafe_interrupts is already set"), "{fix}");
    // On a host with IR- chips the EPERM line alone is not believed to be remapping.
    let (_, d) = explain_text(
        "failed to setup container for group 20: Failed to set iommu for container: Operation not permitted\n",
        &host("amd-workstation"),
    );
    let c = cause(&d, "no_interrupt_remapping");
    assert!(c["explanation"].as_str().unwrap().contains("RMRR"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("IR-IO-APIC"), "{c}");
    // No IOMMU on the Pop!_OS host: kernelstub is the way to the command line.
    let (_, d) = explain_text(
        "TASK ERROR: cannot prepare PCI pass-through, IOMMU not present\n",
        &host("no-iommu"),
    );
    let fix = cause(&d, "no_iommu")["fix"].as_str().unwrap();
    assert!(fix.contains("kernelstub -a \"intel_iommu=on iommu=pt\""), "{fix}");
    let (_, d) = explain_text("No IOMMU detected\n", &host("amd-workstation"));
    assert!(cause(&d, "no_iommu")["fix"]
        .as_str()
        .unwrap()
        .contains("has the IOMMU on now"));
    // libvirt names the domain that holds the device.
    let (_, d) = explain_text(
        "error: Requested operation is not valid: PCI device 0000:0a:00.0 is in use by driver QEMU, domain win11\n",
        &host("amd-workstation"),
    );
    assert!(cause(&d, "device_busy")["fix"]
        .as_str()
        .unwrap()
        .contains("virsh shutdown win11"));
    let (_, d) = explain_text(
        "PCI device '0000:0a:00.0' already in use by VMID '104'\n",
        &host("amd-workstation"),
    );
    assert!(cause(&d, "device_busy")["fix"]
        .as_str()
        .unwrap()
        .contains("qm stop 104"));
    // A BAR conflict on the boot GPU of the AMD host, named through GRUB.
    let (_, d) = explain_text(
        "vfio-pci 0000:0b:00.0: BAR 1: can't reserve [mem 0xd0000000-0xdfffffff 64bit pref]\n",
        &host("amd-workstation"),
    );
    let fix = cause(&d, "bar_reserve")["fix"].as_str().unwrap();
    assert!(fix.contains("0000:0b:00.0 is the boot GPU"), "{fix}");
    assert!(
        fix.contains("initcall_blacklist=sysfb_init") && fix.contains("update-grub"),
        "{fix}"
    );
    // Memlock: the limit from the log is shown.
    let (_, d) = explain_text(
        "vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) exceeded\n",
        &host("amd-workstation"),
    );
    let fix = cause(&d, "dma_map_memory")["fix"].as_str().unwrap();
    assert!(fix.contains("64 KiB") && fix.contains("ulimit -l"), "{fix}");
    // Reset on the AMD GPU of the workstation (Navi 21: not a reset-bug family).
    let (_, d) = explain_text(
        "vfio-pci 0000:0a:00.0: Unable to change power state from D3cold to D0, device inaccessible\n",
        &host("amd-workstation"),
    );
    let fix = cause(&d, "reset_failed")["fix"].as_str().unwrap();
    assert!(
        fix.contains("reset methods bus") && fix.contains("disable_idle_d3=1"),
        "{fix}"
    );
    assert!(!fix.contains("reset bug"), "{fix}");
    // A romfile that does not exist here, and the iGPU's missing ROM BAR.
    let (_, d) = explain_text(
        "failed to find romfile \"/usr/share/kvm/gpu.rom\"\n",
        &host("amd-workstation"),
    );
    assert!(cause(&d, "rom_problem")["fix"]
        .as_str()
        .unwrap()
        .contains("does not exist on this host"));
    let (_, d) = explain_text(
        "vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0x0000\n",
        &host("intel-vmd"),
    );
    assert!(cause(&d, "rom_problem")["fix"]
        .as_str()
        .unwrap()
        .contains("Intel iGPU"));
    // /dev/vfio/N missing: the group's devices and their drivers.
    let (_, d) = explain_text(
        "vfio 0000:01:00.0: failed to open /dev/vfio/2: No such file or directory\n",
        &host("intel-vmd"),
    );
    let fix = cause(&d, "vfio_not_bound")["fix"].as_str().unwrap();
    assert!(
        fix.contains("0000:01:00.0") && fix.contains("nouveau") && fix.contains("vfiotool bind"),
        "{fix}"
    );
    // RMRR on a device this host does not have.
    let (_, d) = explain_text(
        "vfio-pci 0000:04:00.1: DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.\n",
        &host("intel-vmd"),
    );
    assert!(cause(&d, "rmrr")["fix"]
        .as_str()
        .unwrap()
        .contains("device 0000:04:00.1 is not on this host"));
}

#[test]
fn human_output_and_stdin() {
    let mut child = Command::new(common::bin())
        .args(["explain", "--root", &host("amd-workstation"), "-"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"vfio 0000:0a:00.0: group 20 is not viable\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("1. group_not_viable  (line 1, 1 matching)"),
        "{out}"
    );
    assert!(
        out.contains("   seen:  vfio 0000:0a:00.0: group 20 is not viable"),
        "{out}"
    );
    assert!(
        out.contains("   fix:   every endpoint of group 20 is on vfio-pci"),
        "{out}"
    );
}

#[test]
fn binary_empty_huge_and_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("x.rom");
    fs::write(&bin, [0x55u8, 0xaa, 0, 0, 1, 2]).unwrap();
    let o = run(&["explain", bin.to_str().unwrap()]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("binary data (a NUL byte at offset 2)"),
        "{}",
        stderr(&o)
    );
    let empty = dir.path().join("empty.txt");
    fs::write(&empty, "\n\n").unwrap();
    let o = run(&["explain", "--json", empty.to_str().unwrap()]);
    assert_eq!(code(&o), 3);
    assert!(stdout(&o).contains("empty input"), "{}", stdout(&o));
    let o = run(&["explain", "/nonexistent/log.txt"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/log.txt"), "{}", stderr(&o));
    // 20 MiB of log lines with a failure at the start and one past the 8 MiB cap.
    let huge: PathBuf = dir.path().join("huge.log");
    {
        let mut f = fs::File::create(&huge).unwrap();
        writeln!(f, "vfio 0000:0a:00.0: group 20 is not viable").unwrap();
        let line =
            "[    1.000000] pci 0000:00:01.0: PME# supported from D0 D3hot D3cold and nothing else here\n";
        for _ in 0..(20 * 1024 * 1024 / line.len()) {
            f.write_all(line.as_bytes()).unwrap();
        }
        writeln!(
            f,
            "TASK ERROR: cannot prepare PCI pass-through, IOMMU not present"
        )
        .unwrap();
    }
    let t = Instant::now();
    let o = run(&[
        "explain",
        "--json",
        "--root",
        &host("amd-workstation"),
        huge.to_str().unwrap(),
    ]);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["truncated"], true);
    assert_eq!(doc["bytes_read"], 8 * 1024 * 1024);
    assert_eq!(
        ids(&doc),
        ["group_not_viable"],
        "the line past the cap is not read"
    );
    assert!(secs < 20.0, "8 MiB took {secs:.1} s");
    eprintln!("explain on 20 MiB (8 MiB read): {secs:.2} s");
}

/// docs/explain.md's table names exactly the fields the document has.
#[test]
fn documented_schema_matches() {
    let doc = fs::read_to_string(common::repo().join("docs/explain.md")).unwrap();
    let start = doc.find("## `vfiotool.explain/1`").expect("schema section");
    let mut top = std::collections::BTreeSet::new();
    let mut cause = std::collections::BTreeSet::new();
    for line in doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| field"))
        .skip(2)
    {
        let Some(cell) = line.strip_prefix("| `") else {
            break;
        };
        let name = cell.split('`').next().unwrap().to_string();
        match name.strip_prefix("causes[].") {
            Some(c) => cause.insert(c.to_string()),
            None => top.insert(name),
        };
    }
    let (_, d) = explain_text("group 1 is not viable\n", &host("amd-workstation"));
    let keys = |v: &Value| -> std::collections::BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&d), top);
    assert_eq!(keys(&d["causes"][0]), cause);
}

/// On the live host the fix looks for the process that holds /dev/vfio/N (bounded /proc scan).
#[test]
fn device_busy_live_scan() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("log.txt");
    fs::write(
        &f,
        "vfio 0000:0a:00.0: failed to open /dev/vfio/999: Device or resource busy\n",
    )
    .unwrap();
    let o = run(&["explain", "--json", f.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["host"], "live");
    let fix = cause(&d, "device_busy")["fix"].as_str().unwrap();
    assert!(fix.contains("nothing holds /dev/vfio/999 now"), "{fix}");
}

/// `--kernel-log` explains the log `check` reads (here the captured dev/kmsg of a fixture).
#[test]
fn kernel_log_option() {
    let o = run(&[
        "explain",
        "--json",
        "--kernel-log",
        "--root",
        &host("misconfigured"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["input"], "/dev/kmsg");
    assert_eq!(ids(&d), ["rmrr", "bar_reserve", "reset_failed"]);
    let o = run(&["explain", "--kernel-log", "--root", &host("amd-workstation")]);
    assert_eq!(code(&o), 4);
    assert!(
        stderr(&o).contains("vfiotool capture saves it as dev/kmsg"),
        "{}",
        stderr(&o)
    );
    let o = run(&["explain", "--kernel-log", "x.log"]);
    assert_eq!(code(&o), 2, "FILE and --kernel-log conflict");
}
