//! Which kernel modules can drive a device: `modules.alias` matched against the device's
//! modalias (what `lspci -k` prints as "Kernel modules").
//!
//! Only `alias pci:...` lines are kept, indexed by their vendor when it is literal, so matching
//! 1,000 devices against a full distribution kernel's aliases stays cheap.

use std::collections::HashMap;
use std::path::Path;

use crate::error::PathError;
use crate::pci::device::Device;
use crate::pci::sysfs;

/// Largest `modules.alias` read.
const MAX_ALIAS_FILE: u64 = 64 * 1024 * 1024;

/// PCI aliases of one kernel.
#[derive(Debug, Default, Clone)]
pub struct ModuleAliases {
    by_vendor: HashMap<u16, Vec<(String, String)>>,
    any_vendor: Vec<(String, String)>,
}

impl ModuleAliases {
    /// Read a `modules.alias` file; a missing file gives an empty set (no module names shown).
    pub fn load(path: &Path) -> Result<ModuleAliases, PathError> {
        let data = sysfs::read_bytes(path, MAX_ALIAS_FILE)?.unwrap_or_default();
        Ok(Self::parse(&String::from_utf8_lossy(&data)))
    }

    /// Parse the text of a `modules.alias` file.
    pub fn parse(text: &str) -> ModuleAliases {
        let mut m = ModuleAliases::default();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some("alias"), Some(pattern), Some(module)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if !pattern.starts_with("pci:") {
                continue;
            }
            let entry = (pattern.to_string(), module.to_string());
            let vendor = pattern
                .get(5..13)
                .filter(|v| {
                    pattern.as_bytes().get(4) == Some(&b'v') && v.bytes().all(|b| b.is_ascii_hexdigit())
                })
                .and_then(|v| u32::from_str_radix(v, 16).ok())
                .and_then(|v| u16::try_from(v).ok());
            match vendor {
                Some(v) => m.by_vendor.entry(v).or_default().push(entry),
                None => m.any_vendor.push(entry),
            }
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.by_vendor.is_empty() && self.any_vendor.is_empty()
    }

    /// Modules whose aliases match `d`, sorted and without duplicates.
    pub fn modules_for(&self, d: &Device) -> Vec<String> {
        let alias = d.modalias();
        let mut out: Vec<String> = self
            .by_vendor
            .get(&d.vendor_id)
            .into_iter()
            .flatten()
            .chain(self.any_vendor.iter())
            .filter(|(p, _)| glob_match(p.as_bytes(), alias.as_bytes()))
            .map(|(_, m)| m.replace('-', "_"))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Shell-style match with `*` and `?` (the only wildcards PCI aliases use), iterative with one
/// backtrack point: linear in practice, bounded by len(p) * len(s).
pub fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match(
            b"pci:v*d*sv*sd*bc03sc*i*",
            b"pci:v000010DEd00001B80sv0sd0bc03sc00i00"
        ));
        assert!(!glob_match(
            b"pci:v*d*sv*sd*bc03sc*i*",
            b"pci:v000010DEd00001B80sv0sd0bc02sc00i00"
        ));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"abc", b"abcd"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn matches_by_vendor_and_wildcards() {
        let text = "alias pci:v000010DEd*sv*sd*bc03sc*i* nouveau\n\
                    alias pci:v000010DEd00001B80sv*sd*bc*sc*i* nvidia\n\
                    alias pci:v*d*sv*sd*bc0Csc03i30* xhci-pci\n\
                    alias usb:v1234* usbthing\n\
                    alias pci:v00008086d*sv*sd*bc03sc*i* i915\n";
        let m = ModuleAliases::parse(text);
        let d = Device {
            vendor_id: 0x10de,
            device_id: 0x1b80,
            class_code: 0x030000,
            header_type: Some(0),
            ..Device::blank(crate::pci::address::PciAddress::new(0, 1, 0, 0))
        };
        assert_eq!(m.modules_for(&d), ["nouveau", "nvidia"]);
        let mut usb = d.clone();
        usb.class_code = 0x0c0330;
        usb.device_id = 0x1ad6;
        assert_eq!(m.modules_for(&usb), ["xhci_pci"]);
    }
}
