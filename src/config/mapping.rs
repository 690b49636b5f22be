//! Proxmox VE cluster resource mappings (PVE 8+): `/etc/pve/mapping/pci.cfg`, shared by every
//! node of a cluster, lets a VM name a card by mapping id (`hostpciN: mapping=ID`) and start on
//! any node that has one.
//!
//! The format, as pve-guest-common's PVE/Mapping/PCI.pm parses it: a section config whose
//! header is the bare id at column 0 (a `pve-configid`: a letter, then letters, digits or `_`),
//! then indented `map` lines, one property string each: `id=vvvv:dddd` (vendor:device),
//! `iommugroup=N`, `node=NAME` (a `pve-node`), `path=DDDD:BB:DD[.F]` (lower-case hex, domain
//! required; no function = the whole card, checked by its function 0) and
//! `subsystem-id=vvvv:dddd`. Several `map` lines for one node are alternatives: qemu-server's
//! choose_hostpci_devices takes the first that no running VM holds. At VM start qemu-server
//! compares id, subsystem-id and (for the first device) iommugroup with sysfs and refuses a
//! mapping that names one the device lacks or lacks one the device has ("hardware probably
//! changed"), so every field sysfs has is written.

use std::path::Path;

use serde::Serialize;

use super::OptionError;
use crate::error::{Error, Result};

/// Where the cluster file lives (below the host root).
pub const PCI_CFG: &str = "/etc/pve/mapping/pci.cfg";

/// A mapping id as pve-common's `pve_verify_configid` accepts it: `^[a-z][a-z0-9_]+$`, case
/// insensitive.
pub fn check_id(id: &str) -> std::result::Result<(), OptionError> {
    let b = id.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(())
    } else {
        Err(OptionError::MappingId(id.to_string()))
    }
}

/// A node name as pve-common's `pve_verify_node_name` accepts it.
pub fn check_node(node: &str) -> std::result::Result<(), OptionError> {
    let b = node.as_bytes();
    let inner_ok = b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
    let ends_ok =
        b.first().is_some_and(u8::is_ascii_alphanumeric) && b.last().is_some_and(u8::is_ascii_alphanumeric);
    if inner_ok && ends_ok {
        Ok(())
    } else {
        Err(OptionError::NodeName(node.to_string()))
    }
}

/// One `map` property of one node: one card (or one function).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapEntry {
    pub node: String,
    /// `DDDD:BB:DD` for the whole card, `DDDD:BB:DD.F` for one function.
    pub path: String,
    /// `vvvv:dddd` of the path's function 0 (or its function).
    pub id: String,
    pub subsystem_id: Option<String>,
    pub iommugroup: Option<u32>,
}

impl MapEntry {
    /// The property string, keys sorted as Proxmox's writer prints them.
    pub fn property_string(&self) -> String {
        let mut parts = vec![format!("id={}", self.id)];
        if let Some(g) = self.iommugroup {
            parts.push(format!("iommugroup={g}"));
        }
        parts.push(format!("node={}", self.node));
        parts.push(format!("path={}", self.path));
        if let Some(s) = &self.subsystem_id {
            parts.push(format!("subsystem-id={s}"));
        }
        parts.join(",")
    }
}

/// The mapping as written: this node's entries merged into what the cluster file already holds.
#[derive(Debug, Clone, Serialize)]
pub struct Mapping {
    pub id: String,
    pub node: String,
    /// This node's entries: one per identical card, alternatives of each other.
    pub entries: Vec<String>,
    /// Other nodes' entries found in the existing pci.cfg, kept as they are.
    pub other_nodes: Vec<String>,
    /// The id already exists in pci.cfg (then the command is `pvesh set`).
    pub exists: bool,
    /// The whole section for /etc/pve/mapping/pci.cfg.
    pub section: String,
    /// The `pvesh create` (or `pvesh set`) command that writes it.
    pub command: String,
}

/// What an existing section holds: its `map` values and other property lines.
#[derive(Debug, Default)]
struct Section {
    maps: Vec<String>,
    other_lines: Vec<String>,
}

/// Find section `id` in a pci.cfg text. Lines that are neither headers nor indented
/// properties are skipped (Proxmox warns and skips them too).
fn find_section(text: &str, id: &str) -> Option<Section> {
    let mut current: Option<Section> = None;
    let mut in_wanted = false;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            if in_wanted {
                break;
            }
            in_wanted = line.trim_end() == id;
            if in_wanted {
                current = Some(Section::default());
            }
            continue;
        }
        if let (true, Some(s)) = (in_wanted, current.as_mut()) {
            let prop = line.trim();
            match prop.split_once(char::is_whitespace) {
                Some(("map", value)) => s.maps.push(value.trim().to_string()),
                _ => s.other_lines.push(prop.to_string()),
            }
        }
    }
    current
}

/// The `node=` of a map property string.
fn node_of(map: &str) -> Option<&str> {
    map.split(',').find_map(|kv| kv.strip_prefix("node="))
}

/// Build the mapping for `node` from its entries, merged with `root`'s existing pci.cfg.
pub fn build(root: &Path, id: &str, node: &str, entries: &[MapEntry]) -> Result<Mapping> {
    let path = crate::host::under(root, PCI_CFG);
    let existing = match std::fs::read(&path) {
        Ok(bytes) if bytes.len() > 4 << 20 => {
            return Err(Error::bad_input(format!(
                "{}: {} bytes, larger than any mapping file",
                path.display(),
                bytes.len()
            )))
        }
        Ok(bytes) => find_section(&String::from_utf8_lossy(&bytes), id),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&path, "read", &e)),
    };
    let exists = existing.is_some();
    let existing = existing.unwrap_or_default();
    let other_nodes: Vec<String> = existing
        .maps
        .iter()
        .filter(|m| node_of(m) != Some(node))
        .cloned()
        .collect();
    let ours: Vec<String> = entries.iter().map(MapEntry::property_string).collect();
    let mut section = format!("{id}\n");
    for l in &existing.other_lines {
        section.push_str(&format!("\t{l}\n"));
    }
    for m in other_nodes.iter().chain(&ours) {
        section.push_str(&format!("\tmap {m}\n"));
    }
    let maps: Vec<String> = other_nodes
        .iter()
        .chain(&ours)
        .map(|m| format!("--map {}", super::qemu::shell_quote(m)))
        .collect();
    let command = if exists {
        format!("pvesh set /cluster/mapping/pci/{id} {}", maps.join(" "))
    } else {
        format!("pvesh create /cluster/mapping/pci --id {id} {}", maps.join(" "))
    };
    Ok(Mapping {
        id: id.to_string(),
        node: node.to_string(),
        entries: ours,
        other_nodes,
        exists,
        section,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(node: &str, path: &str) -> MapEntry {
        MapEntry {
            node: node.into(),
            path: path.into(),
            id: "10de:2204".into(),
            subsystem_id: Some("10de:1454".into()),
            iommugroup: Some(1),
        }
    }

    #[test]
    fn ids_and_node_names_follow_pve_common() {
        for ok in ["gpu", "Gpu_3090", "a1"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "g", "3090", "gpu-1", "gpu.1", "gpu 1", "_gpu"] {
            assert_eq!(
                check_id(bad),
                Err(OptionError::MappingId(bad.to_string())),
                "{bad}"
            );
        }
        for ok in ["pve", "pve-2", "n1"] {
            assert!(check_node(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-pve", "pve-", "pve.lan", "pve_1"] {
            assert_eq!(
                check_node(bad),
                Err(OptionError::NodeName(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_new_mapping_is_created_and_an_existing_one_keeps_other_nodes() {
        let root = tempfile::tempdir().unwrap();
        let e = entry("pve1", "0000:17:00");
        assert_eq!(
            e.property_string(),
            "id=10de:2204,iommugroup=1,node=pve1,path=0000:17:00,subsystem-id=10de:1454"
        );
        let m = build(root.path(), "gpu", "pve1", std::slice::from_ref(&e)).unwrap();
        assert!(!m.exists);
        assert_eq!(m.section, format!("gpu\n\tmap {}\n", e.property_string()));
        assert_eq!(
            m.command,
            format!(
                "pvesh create /cluster/mapping/pci --id gpu --map {}",
                e.property_string()
            )
        );
        let cfg = root.path().join("etc/pve/mapping");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("pci.cfg"),
            "other\n\tmap id=1:2,node=pve1,path=0000:01:00\n\ngpu\n\tdescription RTX\n\tmap id=10de:2204,node=pve2,path=0000:01:00\n\tmap id=10de:2204,node=pve1,path=0000:99:00\n",
        )
        .unwrap();
        let m = build(root.path(), "gpu", "pve1", std::slice::from_ref(&e)).unwrap();
        assert!(m.exists);
        assert_eq!(m.other_nodes, ["id=10de:2204,node=pve2,path=0000:01:00"]);
        assert_eq!(
            m.section,
            format!(
                "gpu\n\tdescription RTX\n\tmap id=10de:2204,node=pve2,path=0000:01:00\n\tmap {}\n",
                e.property_string()
            )
        );
        assert!(m.command.starts_with(
            "pvesh set /cluster/mapping/pci/gpu --map id=10de:2204,node=pve2,path=0000:01:00 --map id="
        ));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            /// Any text as pci.cfg: a section or none, never a panic; and a section written by
            /// `build` reads back with the same map lines.
            #[test]
            fn any_pci_cfg_parses_and_written_sections_read_back(
                text in "(gpu|other|[ \t#a-z=,:0-9]{0,12}|\tmap [a-z=,:0-9]{0,30}|\n){0,20}",
                paths in proptest::collection::vec("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}", 1..4),
            ) {
                let _ = find_section(&text, "gpu");
                let root = tempfile::tempdir().unwrap();
                let entries: Vec<MapEntry> = paths.iter().map(|p| entry("pve1", p)).collect();
                let m = build(root.path(), "gpu", "pve1", &entries).unwrap();
                let back = find_section(&m.section, "gpu").unwrap();
                prop_assert_eq!(back.maps, m.entries);
            }
        }
    }
}
