//! The documented JSON schemas (docs/json.md) and the documents the commands print have the same
//! top-level fields: a renamed or added field without its documentation fails here.

mod common;

use common::*;
use std::collections::BTreeSet;

/// The field names of each table in the `## `schema`` section, in order: the first column of
/// every row ("`vendor_id`, `device_id`" rows name two fields).
fn documented_tables(schema: &str) -> Vec<BTreeSet<String>> {
    let doc = std::fs::read_to_string(repo().join("docs/json.md")).unwrap();
    let start = doc
        .find(&format!("## `{schema}`"))
        .unwrap_or_else(|| panic!("docs/json.md has no section for {schema}"));
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut tables = Vec::new();
    let mut current = BTreeSet::new();
    for line in section.lines() {
        if line.starts_with("| `") {
            let first = line.trim_start_matches('|').split('|').next().unwrap_or_default();
            current.extend(first.split(',').map(|p| p.trim().trim_matches('`').to_string()));
        } else if !line.starts_with('|') && !current.is_empty() {
            tables.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tables.push(current);
    }
    assert!(!tables.is_empty(), "{schema}: no table rows found");
    tables
}

fn documented_fields(schema: &str) -> BTreeSet<String> {
    documented_tables(schema).swap_remove(0)
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().expect("a JSON object").keys().cloned().collect()
}

fn printed_fields(args: &[&str]) -> BTreeSet<String> {
    let o = run(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    keys(&serde_json::from_slice(&o.stdout).unwrap())
}

#[test]
fn rom_document_matches_its_documentation() {
    let path = sample("nvidia-nvgi.rom");
    let o = run(&["rom", "parse", "--json", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tables = documented_tables("vfiotool.rom/1");
    assert_eq!(tables.len(), 3, "document, image and verdict tables");
    assert_eq!(keys(&doc), tables[0], "top level");
    for image in doc["images"].as_array().unwrap() {
        assert_eq!(keys(image), tables[1], "image");
    }
    assert_eq!(keys(&doc["verdict"]), tables[2], "verdict");
}

#[test]
fn config_document_matches_its_documentation() {
    let root = repo().join("tests/fixtures/host/guest-host_view");
    let printed = printed_fields(&[
        "config",
        "00:03.0",
        "--for",
        "qemu",
        "--firmware",
        "ovmf",
        "--json",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(printed, documented_fields("vfiotool.config/1"));
}

#[test]
fn persist_document_matches_its_documentation() {
    let root = repo().join("tests/fixtures/host/guest-host_view");
    let printed = printed_fields(&[
        "persist",
        "00:03.0",
        "--dry-run",
        "--json",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(printed, documented_fields("vfiotool.persist/1"));
}

#[test]
fn config_mapping_and_options_match_their_documentation() {
    let root = repo().join("tests/fixtures/host/guest-host_view");
    let o = run(&[
        "config",
        "00:03.0",
        "--for",
        "proxmox",
        "--firmware",
        "ovmf",
        "--primary",
        "--hide-kvm",
        "--mapping",
        "edu",
        "--node",
        "pve1",
        "--json",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tables = documented_tables("vfiotool.config/1");
    assert_eq!(tables.len(), 2, "document and mapping tables");
    assert_eq!(keys(&doc), tables[0]);
    assert_eq!(keys(&doc["mapping"]), tables[1], "mapping");
    let documented: BTreeSet<String> = ["option", "reason", "value"].map(String::from).into();
    let names: BTreeSet<&str> = doc["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(keys(c), documented, "options item");
            c["option"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, BTreeSet::from(["primary", "hide_kvm", "vendor_id"]));
}

#[test]
fn extract_and_build_documents_match_their_documentation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let rom = sample("x86-efi-gop-compressed.rom");
    let o = run(&[
        "rom",
        "extract",
        "--json",
        rom.to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tables = documented_tables("vfiotool.rom-extract/1");
    let mut top = tables[0].clone();
    top.insert("output".into());
    assert_eq!(keys(&doc), top, "extract top level (+ output with --json)");
    for image in doc["images"].as_array().unwrap() {
        assert_eq!(keys(image), tables[1], "extract image");
    }
    let images: Vec<String> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| dir.join(i["file"].as_str().unwrap()).display().to_string())
        .collect();
    let out = tmp.path().join("b.rom");
    let mut args = vec!["rom", "build", "--json", "-o", out.to_str().unwrap()];
    for i in &images {
        args.extend(["--image", i.as_str()]);
    }
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tables = documented_tables("vfiotool.rom-build/1");
    assert_eq!(keys(&doc), tables[0], "build top level");
    for image in doc["images"].as_array().unwrap() {
        assert_eq!(keys(image), tables[1], "build image");
    }
}
