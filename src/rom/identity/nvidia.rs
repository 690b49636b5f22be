//! NVIDIA: the BIT table (signature FF B8 "BIT") and its 'i' entry, as nouveau
//! (nvkm/subdev/bios/base.c, bit.c) and envytools' nvbios read them; BMP (FF 7F "NV" 00) on cards
//! before BIT.

use super::{ascii, find, Identity};
use crate::rom::reader::Reader;

const BIT_SIG: &[u8] = b"\xff\xb8BIT";
const BMP_SIG: &[u8] = b"\xff\x7fNV\x00";
/// No BIT table has more entries than this; a larger count is a corrupt header.
const MAX_ENTRIES: usize = 64;

/// `image` starts at the x86 image and runs to the end of the file; `image_len` is the x86
/// image's own length (the signature is searched there only).
pub fn read(image: &[u8], image_len: usize) -> Identity {
    let r = Reader::new(image);
    let head = &image[..image_len.min(image.len())];
    if let Some(bit) = find(head, BIT_SIG, 0, head.len()) {
        return bit_identity(&r, bit);
    }
    if let Some(bmp) = find(head, BMP_SIG, 0, head.len()) {
        let mut id = Identity {
            vendor: Some("nvidia"),
            table: Some("BMP"),
            ..Identity::default()
        };
        match r.bytes("BMP.version", bmp + 10, 4) {
            Ok(v) => id.version = Some(format!("{:02x}.{:02x}.{:02x}.{:02x}", v[3], v[2], v[1], v[0])),
            Err(e) => id.notes.push(format!("BMP table at {bmp:#x}: {e}")),
        }
        return id;
    }
    Identity::default()
}

fn bit_identity(r: &Reader<'_>, bit: usize) -> Identity {
    let mut id = Identity {
        vendor: Some("nvidia"),
        table: Some("BIT"),
        ..Identity::default()
    };
    let header = (
        r.u8("BIT.header_size", bit + 8),
        r.u8("BIT.entry_size", bit + 9),
        r.u8("BIT.entries", bit + 10),
    );
    let (Ok(header_size), Ok(entry_size), Ok(count)) = header else {
        id.notes
            .push(format!("BIT table at {bit:#x} is cut by the end of the data"));
        return id;
    };
    let (header_size, entry_size, count) = (
        usize::from(header_size),
        usize::from(entry_size),
        usize::from(count),
    );
    if header_size < 0x0C || entry_size < 6 || count > MAX_ENTRIES {
        id.notes.push(format!(
            "BIT table at {bit:#x}: header size {header_size:#x}, entry size {entry_size}, {count} entries: not a sane header"
        ));
        return id;
    }
    let entry = (0..count)
        .map(|n| bit + header_size + n * entry_size)
        .find(|&e| r.u8("BIT.id", e) == Ok(b'i'));
    let Some(e) = entry else {
        id.notes.push(format!("BIT table at {bit:#x} has no 'i' entry"));
        return id;
    };
    let (Ok(len), Ok(data)) = (r.u16("BIT.i.length", e + 2), r.u16("BIT.i.offset", e + 4)) else {
        id.notes
            .push(format!("BIT 'i' entry at {e:#x} is cut by the end of the data"));
        return id;
    };
    let (len, data) = (usize::from(len), usize::from(data));
    match r.bytes("BIT.i.version", data, 5) {
        Ok(v) if len >= 5 => {
            id.version = Some(format!(
                "{:02x}.{:02x}.{:02x}.{:02x}.{:02x}",
                v[3], v[2], v[1], v[0], v[4]
            ))
        }
        Ok(_) => id.notes.push(format!(
            "BIT 'i' data at {data:#x} is only {len} bytes: no version"
        )),
        Err(err) => id.notes.push(format!("BIT 'i' data: {err}")),
    }
    // The build date ("MM/DD/YY") sits at +0x0F of the 'i' data on every BIT card seen (envytools
    // nvbios prints it from there); accept it only when it has that shape.
    if len >= 0x17 {
        let date = ascii(r, data + 0x0F, 8, |b| b.is_ascii_digit() || b == b'/');
        match date {
            Some(d) if d.len() == 8 && d.as_bytes()[2] == b'/' && d.as_bytes()[5] == b'/' => {
                id.build_date = Some(d)
            }
            _ => id
                .notes
                .push(format!("BIT 'i' data at {data:#x}: no MM/DD/YY date at +0x0f")),
        }
    }
    id
}
