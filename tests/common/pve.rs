//! A test-side model of the Proxmox parsers that read what `config --for proxmox` prints,
//! written from their source (never from vfiotool's):
//! - pve-common PVE::JSONSchema::parse_property_string: `k=v` parts split on `,`, a part
//!   without `=` is the default key's value (once), duplicate and unknown keys are errors, then
//!   every value is checked against its schema (patterns anchored as `^(?:PATTERN)$`, booleans
//!   `1|0|on|off|yes|no|true|false`, integers, `pve-configid`, `pve-node`);
//! - qemu-server PVE/QemuServer/PCI.pm `$hostpci_fmt` (host = `$PCIRE(;$PCIRE)*` with
//!   `$PCIRE = (?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?`, lower case only;
//!   mapping; rombar, pcie, x-vga, legacy-igd; romfile `[^,;]+`; mdev; the four id overrides
//!   `^0x[0-9a-fA-F]{4}$`; driver keep|vfio) and parse_hostpci's "either host or mapping";
//! - qemu-server PVE/QemuServer/CPUConfig.pm `$cpu_fmt` (cputype default key, hidden,
//!   hv-vendor-id `[a-zA-Z0-9]{1,12}`, flags, reported-model, phys-bits);
//! - pve-guest-common PVE/Mapping/PCI.pm: the section header `^(\S+)\s*$` (a pve-configid),
//!   property lines `^\s+(\S+)(\s+(.*\S))?\s*$`, and `$map_fmt` (node, id and subsystem-id
//!   `^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$`, path `(?:$PCI_RE;)*$PCI_RE` with the domain required,
//!   iommugroup integer, description).
#![allow(dead_code)]

use std::collections::BTreeMap;

#[derive(Clone, Copy)]
pub enum Kind {
    Bool,
    Integer,
    ConfigId,
    Node,
    Enum(&'static [&'static str]),
    Pattern(fn(&str) -> bool),
}

pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub optional: bool,
    pub default_key: bool,
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        optional: true,
        default_key: false,
    }
}

const fn required(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        optional: false,
        default_key: false,
    }
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// qemu-server's `$PCIRE`; `domain_required` for pve-guest-common's `$PCI_RE`.
fn pci_id(s: &str, domain_required: bool) -> bool {
    let (slot, func) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    if func.is_some_and(|f| !(f.len() == 1 && is_lower_hex(f))) {
        return false;
    }
    let parts: Vec<&str> = slot.split(':').collect();
    let bus_dev = |b: &str, d: &str| b.len() == 2 && is_lower_hex(b) && d.len() == 2 && is_lower_hex(d);
    match parts.as_slice() {
        [dom, b, d] => dom.len() >= 4 && is_lower_hex(dom) && bus_dev(b, d),
        [b, d] => !domain_required && bus_dev(b, d),
        _ => false,
    }
}

fn host_list(s: &str) -> bool {
    s.split(';').all(|p| pci_id(p, false))
}

fn path_list(s: &str) -> bool {
    s.split(';').all(|p| pci_id(p, true))
}

fn no_comma_semicolon(s: &str) -> bool {
    !s.is_empty() && !s.contains([',', ';'])
}

fn mdev(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '.', ':'])
}

fn hex_id_override(s: &str) -> bool {
    s.len() == 6 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn vendor_device(s: &str) -> bool {
    matches!(s.split_once(':'), Some((a, b)) if a.len() == 4 && b.len() == 4
        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_hexdigit()))
}

fn hv_vendor_id(s: &str) -> bool {
    (1..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn any_string(s: &str) -> bool {
    !s.is_empty()
}

fn cpu_flags(s: &str) -> bool {
    s.split(';')
        .all(|f| (f.starts_with('+') || f.starts_with('-')) && f.len() > 1)
}

pub const HOSTPCI: &[Key] = &[
    Key {
        name: "host",
        kind: Kind::Pattern(host_list),
        optional: true,
        default_key: true,
    },
    key("mapping", Kind::ConfigId),
    key("rombar", Kind::Bool),
    key("romfile", Kind::Pattern(no_comma_semicolon)),
    key("pcie", Kind::Bool),
    key("x-vga", Kind::Bool),
    key("legacy-igd", Kind::Bool),
    key("mdev", Kind::Pattern(mdev)),
    key("vendor-id", Kind::Pattern(hex_id_override)),
    key("device-id", Kind::Pattern(hex_id_override)),
    key("sub-vendor-id", Kind::Pattern(hex_id_override)),
    key("sub-device-id", Kind::Pattern(hex_id_override)),
    key("driver", Kind::Enum(&["keep", "vfio"])),
];

/// The QEMU CPU models qemu-server lists (the ones vfiotool may print, and a few others).
const CPU_TYPES: &[&str] = &["host", "max", "kvm64", "qemu64", "x86-64-v2-AES", "x86-64-v3"];

pub const CPU: &[Key] = &[
    Key {
        name: "cputype",
        kind: Kind::Enum(CPU_TYPES),
        optional: true,
        default_key: true,
    },
    key("reported-model", Kind::Enum(CPU_TYPES)),
    key("hidden", Kind::Bool),
    key("hv-vendor-id", Kind::Pattern(hv_vendor_id)),
    key("flags", Kind::Pattern(cpu_flags)),
    key("phys-bits", Kind::Pattern(any_string)),
];

pub const MAP: &[Key] = &[
    required("node", Kind::Node),
    required("id", Kind::Pattern(vendor_device)),
    key("subsystem-id", Kind::Pattern(vendor_device)),
    required("path", Kind::Pattern(path_list)),
    key("iommugroup", Kind::Integer),
    key("description", Kind::Pattern(any_string)),
];

pub fn configid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn node(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn check_value(k: &Key, v: &str) -> Result<(), String> {
    let ok = match k.kind {
        Kind::Bool => matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "0" | "on" | "off" | "yes" | "no" | "true" | "false"
        ),
        Kind::Integer => {
            let d = v.strip_prefix('-').unwrap_or(v);
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
        }
        Kind::ConfigId => configid(v),
        Kind::Node => node(v),
        Kind::Enum(values) => values.contains(&v),
        Kind::Pattern(f) => f(v),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{}: value {v:?} does not match its format", k.name))
    }
}

/// parse_property_string for `format`.
pub fn parse_property_string(format: &[Key], data: &str) -> Result<BTreeMap<String, String>, String> {
    let mut res = BTreeMap::new();
    for part in data.split(',') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let dk = format
                    .iter()
                    .find(|k| k.default_key)
                    .ok_or(format!("value without key: {part:?}"))?;
                if res.contains_key(dk.name) {
                    return Err(format!(
                        "duplicate key in comma-separated list property: {}",
                        dk.name
                    ));
                }
                (dk.name.to_string(), part.to_string())
            }
        };
        let spec = format
            .iter()
            .find(|s| s.name == k)
            .ok_or(format!("invalid format - unknown key {k:?}"))?;
        check_value(spec, &v)?;
        if res.insert(k.clone(), v).is_some() {
            return Err(format!("duplicate key in comma-separated list property: {k}"));
        }
    }
    for k in format.iter().filter(|k| !k.optional) {
        if !res.contains_key(k.name) {
            return Err(format!("property is missing and it is not optional: {}", k.name));
        }
    }
    Ok(res)
}

/// A hostpciN value as qemu-server's parse_hostpci takes it.
pub fn hostpci(value: &str) -> Result<BTreeMap<String, String>, String> {
    let res = parse_property_string(HOSTPCI, value)?;
    match (res.contains_key("host"), res.contains_key("mapping")) {
        (true, true) => Err("Cannot set both 'host' and 'mapping'.".into()),
        (false, false) => Err("Either 'host' or 'mapping' must be set.".into()),
        _ => Ok(res),
    }
}

/// The lines of a VM config (`key: value`), each value checked by its key's format.
pub fn vm_config(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut res = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line
            .split_once(": ")
            .ok_or(format!("not `key: value`: {line:?}"))?;
        let v = v.trim();
        match k {
            "bios" if ["ovmf", "seabios"].contains(&v) => {}
            "machine" if v == "q35" => {}
            "vga" if v == "none" => {}
            "cpu" => {
                parse_property_string(CPU, v)?;
            }
            k if k.starts_with("hostpci") => {
                let n: u32 = k[7..].parse().map_err(|_| format!("bad key {k}"))?;
                if n > 15 {
                    return Err(format!("{k}: qemu-server has hostpci0..hostpci15"));
                }
                hostpci(v)?;
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
        if res.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("duplicate key {k}"));
        }
    }
    Ok(res)
}

/// The sections of a /etc/pve/mapping/pci.cfg: id -> the map values.
pub fn mapping_cfg(text: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut res: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            current = None;
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            let id = line.trim_end();
            if id.contains(char::is_whitespace) || !configid(id) {
                return Err(format!("bad section header {line:?}"));
            }
            res.insert(id.to_string(), Vec::new());
            current = Some(id.to_string());
            continue;
        }
        let id = current
            .as_ref()
            .ok_or(format!("property outside a section: {line:?}"))?;
        let prop = line.trim();
        let (k, v) = prop
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((prop, ""));
        match k {
            "map" => {
                parse_property_string(MAP, v)?;
                res.get_mut(id).expect("section inserted").push(v.to_string());
            }
            "description" | "mdev" => {}
            _ => return Err(format!("unknown property {k:?} in section {id}")),
        }
    }
    Ok(res)
}
