//! The answer a user acts on, in the firmware's terms: what OVMF and SeaBIOS will each do with
//! this ROM (from [`super::firmware`]), which one gives pre-boot output, and what to do about it.
//!
//! `firmware` is about pre-boot display: "ovmf" when OVMF loads a driver that provides GOP,
//! "seabios" when SeaBIOS runs an x86 VGA BIOS from it, "none" otherwise.

use serde::Serialize;

use super::chain::{ChainEnd, Image};
use super::firmware::ovmf::Outcome;
use super::firmware::FirmwareView;
use super::Prefix;

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// OVMF loads a driver from this ROM that provides GOP (judged after the cut when the file
    /// has a prefix).
    pub uefi_gop: bool,
    /// The chain holds a reachable x86 image.
    pub legacy_x86: bool,
    /// "ovmf", "seabios" or "none".
    pub firmware: &'static str,
    /// The index of the GOP driver OVMF loads.
    pub gop_image: Option<usize>,
    pub gop_version: Option<String>,
    /// An EFI image lies after the image with the last-image flag.
    pub efi_unreachable: bool,
    /// The file ends before the chain does.
    pub truncated: bool,
    /// The file starts with an NVIDIA dump header or other bytes before an NVIDIA image: cut
    /// them with `rom patch` before use.
    pub nvidia_header: bool,
    /// Some image has display class (base class 03).
    pub display: bool,
    /// The lines printed under "verdict", most important first.
    pub lines: Vec<String>,
}

pub fn decide(images: &[Image], end: ChainEnd, prefix: Option<&Prefix>, view: &FirmwareView) -> Verdict {
    let (ovmf, seabios) = (&view.ovmf, &view.seabios);
    let gop = ovmf.gop_driver.and_then(|i| images.get(i));
    let legacy_x86 = images.iter().any(|i| i.reachable && i.code_type == 0x00);
    let display = images.iter().any(|i| (i.class_code >> 16) as u8 == 0x03);
    let truncated = matches!(end, ChainEnd::Truncated | ChainEnd::EndOfFile);
    let efi_unreachable = images.iter().any(|i| !i.reachable && i.efi.is_some());
    let nvidia_header = prefix.is_some_and(|p| p.kind == "nvgi")
        || (prefix.is_some() && images.first().is_some_and(|i| i.vendor_id == 0x10DE));
    let firmware = if gop.is_some() {
        "ovmf"
    } else if seabios.display {
        "seabios"
    } else {
        "none"
    };
    let gop_version = gop
        .and_then(|g| g.efi.as_ref())
        .and_then(|e| e.gop_version.clone());
    let after_cut = if prefix.is_some() {
        " (after `rom patch`)"
    } else {
        ""
    };

    let mut lines = Vec::new();
    // The summary first.
    match (gop, firmware) {
        (Some(g), _) => {
            let version = gop_version
                .as_deref()
                .map(|v| format!(", version {v}"))
                .unwrap_or_default();
            lines.push(format!(
                "UEFI GOP driver reachable (image {} at {:#x}{version}) -> OVMF (q35) will show pre-boot output{after_cut}",
                g.index, g.offset
            ));
        }
        (None, "seabios") => lines.push(
            "no reachable GOP -> SeaBIOS, or find a ROM with UEFI support and pass it as romfile".into(),
        ),
        _ if !display => {
            lines.push("not a display ROM: no pre-boot display expected from it under either firmware".into())
        }
        _ => lines.push("neither firmware gets pre-boot display from this ROM".into()),
    }
    // What OVMF does, image by image.
    for e in &ovmf.efi_images {
        let idx = e.image.map(|i| i.to_string()).unwrap_or_else(|| "?".into());
        let what = match e.outcome {
            Outcome::Loaded => "OVMF loads it",
            Outcome::Skipped => "OVMF skips it",
            Outcome::LoadFails => "OVMF fails to load it",
            Outcome::NotReached => "OVMF never reaches it",
        };
        lines.push(format!(
            "EFI image {idx} at {:#x}: {what}: {}",
            e.offset, e.reason
        ));
    }
    if ovmf.efi_images.is_empty() {
        lines.push("OVMF: no EFI image in this ROM, so no pre-boot display under OVMF".into());
    }
    // What SeaBIOS does.
    for s in &seabios.skipped {
        if s.reason.starts_with("the x86 image is for") {
            lines.push(format!(
                "SeaBIOS will skip the x86 image: it {}",
                &s.reason["the x86 image ".len()..]
            ));
        }
    }
    let who = match seabios.ids_from {
        super::firmware::seabios::IdsFrom::Device => "the card",
        _ => "the card the ROM names",
    };
    let sb = match (seabios.runs, &seabios.card) {
        (true, Some(card)) => format!("SeaBIOS {} for {who} {card}{after_cut}", seabios.reason),
        _ => format!(
            "SeaBIOS runs nothing from this ROM{after_cut}: {}",
            seabios.reason
        ),
    };
    lines.push(sb);
    if truncated {
        lines.push(
            "dump looks truncated (UEFI part missing): dump the ROM again, or use a full ROM file".into(),
        );
    }
    if let Some(p) = prefix {
        let what = if nvidia_header {
            "NVIDIA header present"
        } else {
            "bytes before the first image"
        };
        lines.push(format!(
            "{what} ({:#x} bytes before the first image): as given, neither firmware finds an image at offset 0; run `vfiotool rom patch` before using it as romfile",
            p.bytes
        ));
    }
    Verdict {
        uefi_gop: gop.is_some(),
        legacy_x86,
        firmware,
        gop_image: gop.map(|g| g.index),
        gop_version,
        efi_unreachable,
        truncated,
        nvidia_header,
        display,
        lines,
    }
}
