//! PCI addresses: parse and display `DDDD:BB:DD.F`.
//!
//! Accepted forms (hex, case-insensitive):
//! - `0000:01:00.0` — full form; the domain may have more than four digits (Intel VMD puts its
//!   devices in domain `10000`, and the kernel names them `10000:e1:00.0`).
//! - `01:00.0` — short form, domain 0 (what `lspci` prints by default).
//! - `01:00` / `0000:01:00` — a *slot*: every function of that device ([`SlotAddress`]).
//!
//! [`PciAddress`] always displays in the kernel's sysfs form: the domain with at least four hex
//! digits, then `bb:dd.f`, lowercase. That is the directory name under `/sys/bus/pci/devices`.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Highest device (slot) number on a bus.
pub const MAX_DEVICE: u8 = 0x1f;
/// Highest function number of a device.
pub const MAX_FUNCTION: u8 = 7;

/// One PCI function: domain (segment), bus, device (slot), function.
///
/// Ordered as `lspci` sorts: by domain, bus, device, then function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

/// A device (slot) with all of its functions: `01:00` or `0000:01:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotAddress {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
}

/// What a user may name on the command line: one function or a whole slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressSpec {
    Function(PciAddress),
    Slot(SlotAddress),
}

/// Why an address did not parse. The message quotes the input and shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a PCI address ({why}); expected DDDD:BB:DD.F, BB:DD.F or BB:DD, e.g. 0000:01:00.0")]
pub struct AddressError {
    pub input: String,
    pub why: &'static str,
}

fn err(input: &str, why: &'static str) -> AddressError {
    AddressError {
        input: input.to_string(),
        why,
    }
}

/// Parse 1..=max_len hex digits (no sign, no `0x`).
fn hex(part: &str, max_len: usize) -> Option<u32> {
    if part.is_empty() || part.len() > max_len || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(part, 16).ok()
}

/// Split `[DDDD:]BB:DD` into its numbers.
fn parse_slot(input: &str, text: &str) -> Result<SlotAddress, AddressError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (domain, bus, device) = match parts.as_slice() {
        [bus, dev] => (0, *bus, *dev),
        [dom, bus, dev] => (
            hex(dom, 8).ok_or_else(|| err(input, "the domain must be 1 to 8 hex digits"))?,
            *bus,
            *dev,
        ),
        _ => return Err(err(input, "wrong number of ':' separators")),
    };
    let bus = hex(bus, 2).ok_or_else(|| err(input, "the bus must be 1 or 2 hex digits"))? as u8;
    let device = hex(device, 2).ok_or_else(|| err(input, "the device must be 1 or 2 hex digits"))?;
    if device > u32::from(MAX_DEVICE) {
        return Err(err(input, "the device number is above 1f"));
    }
    Ok(SlotAddress {
        domain,
        bus,
        device: device as u8,
    })
}

impl PciAddress {
    pub const fn new(domain: u32, bus: u8, device: u8, function: u8) -> Self {
        PciAddress {
            domain,
            bus,
            device,
            function,
        }
    }

    /// Parse `DDDD:BB:DD.F` or `BB:DD.F` (a function is required; see [`AddressSpec::parse`]
    /// for the slot form). Surrounding whitespace (a trailing newline from sysfs) is ignored.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let text = input.trim();
        let (slot, func) = text
            .rsplit_once('.')
            .ok_or_else(|| err(input, "no '.' before the function number"))?;
        let function = hex(func, 1).ok_or_else(|| err(input, "the function must be one digit 0-7"))?;
        if function > u32::from(MAX_FUNCTION) {
            return Err(err(input, "the function number is above 7"));
        }
        let s = parse_slot(input, slot)?;
        Ok(PciAddress::new(s.domain, s.bus, s.device, function as u8))
    }

    /// The slot (device) this function belongs to.
    pub fn slot(&self) -> SlotAddress {
        SlotAddress {
            domain: self.domain,
            bus: self.bus,
            device: self.device,
        }
    }

    /// The short `bb:dd.f` form `lspci` prints for domain 0 (the full form for other domains).
    pub fn short(&self) -> String {
        if self.domain == 0 {
            format!("{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl FromStr for PciAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PciAddress::parse(s)
    }
}

/// Serialized as the sysfs string, `"0000:01:00.0"`.
impl Serialize for PciAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl SlotAddress {
    /// Function `function` of this slot.
    pub fn function(&self, function: u8) -> PciAddress {
        PciAddress::new(self.domain, self.bus, self.device, function)
    }
}

impl fmt::Display for SlotAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}", self.domain, self.bus, self.device)
    }
}

impl Serialize for SlotAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl AddressSpec {
    /// Parse any accepted form: with a `.F` it is one function, without it a whole slot.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let text = input.trim();
        if text.contains('.') {
            PciAddress::parse(input).map(AddressSpec::Function)
        } else {
            parse_slot(input, text).map(AddressSpec::Slot)
        }
    }

    /// Does `addr` fall under this spec?
    pub fn matches(&self, addr: &PciAddress) -> bool {
        match self {
            AddressSpec::Function(a) => a == addr,
            AddressSpec::Slot(s) => addr.slot() == *s,
        }
    }
}

impl fmt::Display for AddressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressSpec::Function(a) => a.fmt(f),
            AddressSpec::Slot(s) => s.fmt(f),
        }
    }
}

impl FromStr for AddressSpec {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AddressSpec::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_short_and_vmd_forms() {
        assert_eq!(
            PciAddress::parse("0000:01:00.0").unwrap(),
            PciAddress::new(0, 1, 0, 0)
        );
        assert_eq!(PciAddress::parse("01:00.1").unwrap(), PciAddress::new(0, 1, 0, 1));
        assert_eq!(
            PciAddress::parse("0000:0A:1F.7\n").unwrap(),
            PciAddress::new(0, 10, 31, 7)
        );
        let vmd = PciAddress::parse("10000:e1:00.0").unwrap();
        assert_eq!(vmd, PciAddress::new(0x10000, 0xe1, 0, 0));
        assert_eq!(vmd.to_string(), "10000:e1:00.0");
        assert_eq!(vmd.short(), "10000:e1:00.0");
        assert_eq!(PciAddress::new(0, 1, 0, 0).short(), "01:00.0");
        assert_eq!(PciAddress::new(0, 1, 0, 0).to_string(), "0000:01:00.0");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "0000:00:00.0",
            "0001:ff:1f.7",
            "10000:00:0e.3",
            "ffffffff:80:01.2",
        ] {
            assert_eq!(PciAddress::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_input_with_reason() {
        for (s, why) in [
            ("", "separators"),
            ("01:00.8", "above 7"),
            ("01:20.0", "above 1f"),
            ("001:00.0", "bus"),
            ("0000:01:00:00.0", "separators"),
            ("1:2:3:4", "separators"),
            ("g0:00.0", "bus"),
            ("123456789:00:00.0", "domain"),
            ("01:00.", "function"),
            ("+1:00.0", "bus"),
        ] {
            let e = AddressSpec::parse(s).unwrap_err();
            assert!(e.to_string().contains(why), "{s}: {e}");
            assert!(e.to_string().contains("expected DDDD:BB:DD.F"), "{e}");
        }
    }

    #[test]
    fn function_required_by_pci_address_parse() {
        let e = PciAddress::parse("01:00").unwrap_err();
        assert!(e.to_string().contains("no '.'"), "{e}");
    }

    #[test]
    fn slot_specs_match_every_function() {
        let spec = AddressSpec::parse("01:00").unwrap();
        assert_eq!(
            spec,
            AddressSpec::Slot(SlotAddress {
                domain: 0,
                bus: 1,
                device: 0
            })
        );
        assert!(spec.matches(&PciAddress::new(0, 1, 0, 0)));
        assert!(spec.matches(&PciAddress::new(0, 1, 0, 3)));
        assert!(!spec.matches(&PciAddress::new(0, 1, 1, 0)));
        assert!(!spec.matches(&PciAddress::new(1, 1, 0, 0)));
        let vmd = AddressSpec::parse("10000:e1:00").unwrap();
        assert!(vmd.matches(&PciAddress::new(0x10000, 0xe1, 0, 1)));
        assert_eq!(vmd.to_string(), "10000:e1:00");
        let one = AddressSpec::parse("0000:01:00.1").unwrap();
        assert!(one.matches(&PciAddress::new(0, 1, 0, 1)));
        assert!(!one.matches(&PciAddress::new(0, 1, 0, 0)));
    }

    #[test]
    fn sorts_like_lspci() {
        let mut v = [
            PciAddress::new(0x10000, 0, 0, 0),
            PciAddress::new(0, 2, 0, 0),
            PciAddress::new(0, 1, 0, 1),
            PciAddress::new(0, 1, 0, 0),
        ];
        v.sort();
        let s: Vec<String> = v.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            s,
            ["0000:01:00.0", "0000:01:00.1", "0000:02:00.0", "10000:00:00.0"]
        );
    }

    #[test]
    fn serializes_as_string() {
        let j = serde_json::to_string(&PciAddress::new(0, 1, 0, 0)).unwrap();
        assert_eq!(j, "\"0000:01:00.0\"");
    }
}
