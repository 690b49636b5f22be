//! Intel integrated graphics: the Video BIOS Table ("$VBT" signature, 20 bytes, then the version
//! at +0x14), as the i915 driver's intel_bios.c finds it in the option ROM.

use super::{find, Identity};
use crate::rom::reader::Reader;

pub fn read(image: &[u8], image_len: usize) -> Identity {
    let head = &image[..image_len.min(image.len())];
    let Some(at) = find(head, b"$VBT", 0, head.len()) else {
        return Identity::default();
    };
    let r = Reader::new(image);
    let mut id = Identity {
        vendor: Some("intel"),
        table: Some("VBT"),
        ..Identity::default()
    };
    match (r.bytes("VBT.signature", at, 20), r.u16("VBT.version", at + 0x14)) {
        (Ok(sig), Ok(version)) => {
            let text: String = sig
                .iter()
                .take_while(|b| (0x20..0x7F).contains(*b))
                .map(|b| char::from(*b))
                .collect();
            id.name = Some(text.trim_end().to_string());
            id.version = Some(format!("VBT {}.{:02}", version / 100, version % 100));
        }
        _ => id
            .notes
            .push(format!("VBT header at {at:#x} is cut by the end of the data")),
    }
    id
}
