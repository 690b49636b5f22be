//! The answer a user acts on: will OVMF show pre-boot output from this ROM, or is SeaBIOS the
//! choice, and what to do about it.
//!
//! `firmware` is about pre-boot display: "ovmf" when a reachable x64 GOP driver exists,
//! "seabios" when a reachable legacy x86 image exists, "none" otherwise.

use serde::Serialize;

use super::chain::{ChainEnd, Image};
use super::efi::MACHINE_X64;
use super::Prefix;

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub uefi_gop: bool,
    pub legacy_x86: bool,
    /// "ovmf", "seabios" or "none".
    pub firmware: &'static str,
    /// The index of the reachable GOP driver image.
    pub gop_image: Option<usize>,
    pub gop_version: Option<String>,
    /// An EFI image lies after the image with the last-image flag.
    pub efi_unreachable: bool,
    /// The file ends before the chain does.
    pub truncated: bool,
    /// The file starts with an NVIDIA dump header: cut it with `rom patch` before use.
    pub nvidia_header: bool,
    /// Some image has display class (base class 03).
    pub display: bool,
    /// The lines printed under "verdict", most important first.
    pub lines: Vec<String>,
}

fn class_name(base: u8) -> &'static str {
    match base {
        0x01 => "storage",
        0x02 => "network",
        0x03 => "display",
        0x0C => "serial bus",
        _ => "other",
    }
}

pub fn decide(images: &[Image], end: ChainEnd, prefix: Option<&Prefix>) -> Verdict {
    let reachable = || images.iter().filter(|i| i.reachable);
    let is_gop_x64 = |i: &&Image| {
        i.efi
            .as_ref()
            .is_some_and(|e| e.gop && e.pe_ok && e.machine == MACHINE_X64)
    };
    let gop = reachable().find(is_gop_x64);
    let legacy_x86 = reachable().any(|i| i.code_type == 0x00);
    let display = images.iter().any(|i| (i.class_code >> 16) as u8 == 0x03);
    let truncated = matches!(end, ChainEnd::Truncated | ChainEnd::EndOfFile);
    let efi_unreachable = images.iter().any(|i| !i.reachable && i.efi.is_some());
    let nvidia_header = prefix.is_some_and(|p| p.kind == "nvgi")
        || (prefix.is_some() && images.first().is_some_and(|i| i.vendor_id == 0x10DE));
    let firmware = if gop.is_some() {
        "ovmf"
    } else if legacy_x86 {
        "seabios"
    } else {
        "none"
    };

    let mut lines = Vec::new();
    if let Some(g) = gop {
        let version = g
            .efi
            .as_ref()
            .and_then(|e| e.gop_version.as_deref())
            .map(|v| format!(", version {v}"))
            .unwrap_or_default();
        lines.push(format!(
            "UEFI GOP driver reachable (image {} at {:#x}{version}) -> OVMF (q35) will show pre-boot output",
            g.index, g.offset
        ));
    } else {
        for i in images.iter().filter(|i| i.efi.is_some()) {
            let Some(e) = &i.efi else { continue };
            let what = if !i.reachable {
                if e.gop {
                    "a GOP driver, but it lies after the last-image flag: firmware never loads it"
                } else {
                    "after the last-image flag: firmware never loads it"
                }
            } else if (i.class_code >> 16) as u8 != 0x03 {
                "not a display driver"
            } else if e.driver_size.is_none() {
                "its driver could not be read (see problems): cannot tell whether it is a GOP driver"
            } else if e.gop && e.machine != MACHINE_X64 {
                "a GOP driver, but not for x64: OVMF cannot run it"
            } else if e.gop {
                "a GOP driver, but its PE headers are not sound (see problems)"
            } else if e.uga_guid {
                "EFI, but no GOP: a UGA-only (Apple) driver gives no display under OVMF"
            } else if e.machine == super::efi::MACHINE_EBC {
                "EFI, but no GOP: an EBC driver without GOP gives no display under OVMF"
            } else {
                "EFI, but no GOP protocol in the driver"
            };
            lines.push(format!(
                "EFI image {} at {:#x} ({} class, {}): {what}",
                i.index,
                i.offset,
                class_name((i.class_code >> 16) as u8),
                e.machine_name
            ));
        }
        if truncated {
            lines.push(
                "dump looks truncated (UEFI part missing): dump the ROM again, or use a full ROM file".into(),
            );
        }
        if !display {
            lines
                .push("not a display ROM: no pre-boot display expected from it under either firmware".into());
        } else if legacy_x86 {
            lines.push(
                "no reachable GOP -> SeaBIOS, or find a ROM with UEFI support and pass it as romfile".into(),
            );
        } else {
            lines
                .push("no reachable GOP and no legacy x86 image -> no pre-boot display from this ROM".into());
        }
    }
    if nvidia_header {
        let bytes = prefix.map(|p| p.bytes).unwrap_or_default();
        lines.push(format!(
            "NVIDIA header present ({bytes:#x} bytes before the first image): run `vfiotool rom patch` before using it as romfile"
        ));
    }
    Verdict {
        uefi_gop: gop.is_some(),
        legacy_x86,
        firmware,
        gop_image: gop.map(|g| g.index),
        gop_version: gop
            .and_then(|g| g.efi.as_ref())
            .and_then(|e| e.gop_version.clone()),
        efi_unreachable,
        truncated,
        nvidia_header,
        display,
        lines,
    }
}
