//! SeaBIOS on a ROM (`src/optionroms.c`).
//!
//! `map_pcirom` walks from offset 0: each position must hold 55AA and a "PCIR" at the pointer
//! (an unaligned pointer only warns); the first image whose PCIR vendor AND device equal the
//! card's and whose code type is 0 (x86) is taken; the last-image flag ends the search; otherwise
//! it steps by the PCIR image length. The PCIR 3.0 device list is never read. `init_optionrom`
//! then needs a non-zero init size (byte 2) and, by default (`etc/optionroms-checksum`), bytes
//! that sum to 0 over that init size ("Found option rom with bad checksum").

use serde::Serialize;

use super::{image_at, Bar, Card};
use crate::rom::chain::{Image, MAX_IMAGES};
use crate::rom::pcir::BLOCK;

/// Where the ids SeaBIOS compares with come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdsFrom {
    /// The card given with `--device`.
    Device,
    /// No device given: the ids of the ROM's first x86 image, assumed to be the card's.
    Rom,
    /// No device and no x86 image: nothing to compare.
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeabiosSkip {
    pub image: Option<usize>,
    pub offset: usize,
    pub reason: String,
}

/// `firmware_view.seabios`.
#[derive(Debug, Clone, Serialize)]
pub struct SeabiosView {
    /// The vendor:device SeaBIOS looks for.
    pub card: Option<String>,
    pub ids_from: IdsFrom,
    /// See `OvmfView::judged_after_cut`.
    pub judged_after_cut: bool,
    /// The image map_pcirom picks.
    pub image: Option<usize>,
    /// SeaBIOS runs that image (checksum and size accepted).
    pub runs: bool,
    /// Images passed over on the way, and why.
    pub skipped: Vec<SeabiosSkip>,
    /// Why nothing runs, or what runs.
    pub reason: String,
    /// The image runs and is a VGA BIOS (display card, or display class without a device).
    pub display: bool,
}

pub fn view(bytes: &[u8], images: &[Image], first: usize, card: Option<&Card>) -> SeabiosView {
    let bar = Bar::new(bytes.get(first..).unwrap_or_default());
    let (want, ids_from) = match card {
        Some(c) => (Some((c.vendor_id, c.device_id)), IdsFrom::Device),
        None => match images.iter().find(|i| i.reachable && i.code_type == 0) {
            Some(i) => (Some((i.vendor_id, i.device_id)), IdsFrom::Rom),
            None => (None, IdsFrom::None),
        },
    };
    let mut v = SeabiosView {
        card: want.map(|(a, b)| format!("{a:04x}:{b:04x}")),
        ids_from,
        judged_after_cut: first != 0,
        image: None,
        runs: false,
        skipped: Vec::new(),
        reason: String::new(),
        display: false,
    };
    let mut offset = 0usize;
    let mut found = None;
    for _ in 0..=MAX_IMAGES {
        let abs = offset + first;
        let img = image_at(images, abs);
        if bar.u16(offset) != Some(0xAA55) {
            v.reason = format!("no 55AA at {abs:#x}: no option ROM for the card");
            break;
        }
        let ptr = usize::from(bar.u16(offset + 0x18).unwrap_or(0));
        if !bar.is_pcir(offset + ptr) {
            v.reason =
                format!("image at {abs:#x} has no \"PCIR\" at its pointer: no option ROM for the card");
            break;
        }
        let p = offset + ptr;
        let vendor = bar.u16(p + 4).unwrap_or(0);
        let device = bar.u16(p + 6).unwrap_or(0);
        let code_type = bar.u8(p + 0x14).unwrap_or(0xFF);
        let last = bar.u8(p + 0x15).unwrap_or(0) & 0x80 != 0;
        let length = usize::from(bar.u16(p + 0x10).unwrap_or(0)) * BLOCK;
        if code_type == 0 && Some((vendor, device)) == want {
            found = Some(offset);
            break;
        }
        let reason = if code_type != 0 {
            format!("code type {code_type:#04x}, not x86")
        } else {
            let (cv, cd) = want.unwrap_or_default();
            let listed = img.is_some_and(|i| i.device_list.contains(&cd));
            format!(
                "the x86 image is for {vendor:04x}:{device:04x}, the card is {cv:04x}:{cd:04x}{}",
                if listed {
                    " (its PCIR 3.0 device list names the card, but SeaBIOS compares only the PCIR device id)"
                } else {
                    ""
                }
            )
        };
        v.skipped.push(SeabiosSkip {
            image: img.map(|i| i.index),
            offset: abs,
            reason,
        });
        if last {
            v.reason = format!("last-image flag at {abs:#x}: no x86 image for the card");
            break;
        }
        if length == 0 {
            v.reason =
                format!("image at {abs:#x} has PCIR image length 0: SeaBIOS would inspect it forever (hang)");
            break;
        }
        offset += length;
    }
    let Some(at) = found else {
        if v.reason.is_empty() {
            v.reason = format!("more than {MAX_IMAGES} images without an x86 image for the card");
        }
        return v;
    };
    let abs = at + first;
    let img = image_at(images, abs);
    v.image = img.map(|i| i.index);
    let init = usize::from(bar.u8(at + 2).unwrap_or(0)) * BLOCK;
    let sum = bar.sum(at, init);
    if init == 0 {
        v.reason = format!("the x86 image at {abs:#x} has init size 0: SeaBIOS refuses it");
    } else if sum != 0 {
        v.reason = format!(
            "the x86 image at {abs:#x} sums to {sum:#04x}, not 0, over its init size {init:#x}: SeaBIOS refuses it (\"bad checksum\"; `rom patch --fix-checksum` corrects it)"
        );
    } else {
        v.runs = true;
        v.reason = format!("runs the x86 image at {abs:#x} (init size {init:#x})");
        v.display = match card {
            Some(c) => c.base_class() == 0x03,
            None => img.is_some_and(|i| (i.class_code >> 16) as u8 == 0x03),
        };
    }
    v
}
