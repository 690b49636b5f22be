//! CLI contract of `bind`, `unbind`/`restore` and `rom dump` on the build host (no IOMMU, no spare
//! device): usage errors, missing devices, JSON documents. The real behaviour is proven in the
//! QEMU guest (tests/guest.rs).

mod common;

use common::{code, run, stderr, stdout};

/// An address that names no device on this machine.
fn absent() -> &'static str {
    for a in ["0000:7f:1f.7", "0000:7e:1e.6", "0000:7d:1d.5"] {
        if !std::path::Path::new("/sys/bus/pci/devices").join(a).exists() {
            return a;
        }
    }
    panic!("every candidate address exists on this machine");
}

#[test]
fn malformed_addresses_are_usage_errors() {
    for args in [
        vec!["bind", "zz:00.0"],
        vec!["unbind", "01:00.9"],
        vec!["rom", "dump", "01:00"],
        vec!["restore", "1:2:3:4"],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("expected DDDD:BB:DD.F"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_missing_device_is_a_system_error_and_nothing_is_planned() {
    let a = absent();
    let o = run(&["bind", "--dry-run", a]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("no PCI device {a}")),
        "{}",
        stderr(&o)
    );
    let o = run(&["restore", "--dry-run", a]);
    assert_eq!(code(&o), 4);
    let o = run(&["rom", "dump", a]);
    assert_eq!(code(&o), 4);
    assert!(stderr(&o).contains("no PCI device"), "{}", stderr(&o));
}

#[test]
fn json_bind_report_carries_schema_error_and_exit_code() {
    let a = absent();
    let o = run(&["bind", "--json", "--dry-run", a]);
    assert_eq!(code(&o), 4);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(doc["schema"], "vfiotool.bind/1");
    assert_eq!(doc["command"], "bind");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["viable"], false);
    assert_eq!(doc["exit_code"], 4);
    assert!(doc["error"].as_str().unwrap_or("").contains("no PCI device"));
    assert!(doc["steps"].as_array().is_some_and(|s| s.is_empty()));
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let o = run(&["bind", "--help"]);
    assert_eq!(code(&o), 0);
    let h = stdout(&o);
    assert!(
        h.contains("Examples:") && h.contains("--group") && h.contains("rolled back"),
        "{h}"
    );
    let o = run(&["rom", "dump", "--help"]);
    assert!(stdout(&o).contains("--via"));
    let o = run(&["restore", "--help"]);
    assert_eq!(code(&o), 0);
}
