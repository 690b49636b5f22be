//! AMD: the ATOM ROM header (u16 at 0x48 points to it, "ATOM" at +4) and the identity strings
//! the kernel's amdgpu atom.c reads (atom_get_vbios_pn, _version, _date, _name), from fixed
//! places of the x86 image with the same fallbacks.

use super::{ascii, find, Identity};
use crate::rom::reader::Reader;

const NUMBER_OF_STRINGS: usize = 0x2F;
const STRING_START: usize = 0x6E;
const PART_NUMBER: usize = 0x80;
const DATE: usize = 0x50;
const STRING_LENGTH: usize = 43;

pub fn read(image: &[u8]) -> Identity {
    let r = Reader::new(image);
    let Ok(header) = r.u16("ATOM.rom_header", 0x48) else {
        return Identity::default();
    };
    if r.bytes("ATOM.signature", usize::from(header) + 4, 4).ok() != Some(b"ATOM".as_slice()) {
        return Identity::default();
    }
    let mut id = Identity {
        vendor: Some("amd"),
        table: Some("ATOM"),
        ..Identity::default()
    };
    id.part_number = part_number(&r, image);
    if id.part_number.is_none() {
        id.notes.push("ATOM: no part number string".into());
    }
    id.version = find(image, b"ATOMBIOSBK-AMD", 3, 1024)
        .and_then(|at| ascii(&r, at + 18, 32, |b| (0x20..0x7F).contains(&b)))
        .map(|s| s.trim().to_string());
    id.build_date = date(&r);
    if id.build_date.is_none() {
        id.notes
            .push(format!("ATOM: no MM/DD/YY HH:MM date at {DATE:#x}"));
    }
    id.name = name(&r);
    id
}

fn part_number(r: &Reader<'_>, image: &[u8]) -> Option<String> {
    let strings = r.u8("ATOM.number_of_strings", NUMBER_OF_STRINGS).ok()?;
    let mut at = if strings != 0 {
        usize::from(r.u16("ATOM.string_start", STRING_START).ok()?)
    } else {
        PART_NUMBER
    };
    if r.u8("ATOM.part_number", at).ok()? == 0 {
        at = find(image, b"ATOMBIOS", 3, 1024)? + b"ATOMBIOS".len();
    }
    if r.u8("ATOM.part_number", at).ok()? == 0 {
        at += 1;
    }
    ascii(r, at, STRING_LENGTH, |b| (b' '..=b'z').contains(&b))
}

/// "MM/DD/YY HH:MM" at 0x50, printed as atom.c does: "20YY/MM/DD HH:MM".
fn date(r: &Reader<'_>) -> Option<String> {
    let d = r.bytes("ATOM.date", DATE, 14).ok()?;
    let digits = [0, 1, 3, 4, 6, 7, 9, 10, 12, 13];
    if !digits.iter().all(|&i| d[i].is_ascii_digit()) || d[2] != b'/' || d[5] != b'/' {
        return None;
    }
    let s = |a: usize, b: usize| String::from_utf8_lossy(&d[a..b]).into_owned();
    Some(format!(
        "20{}/{}/{} {}:{}",
        s(6, 8),
        s(0, 2),
        s(3, 5),
        s(9, 11),
        s(12, 14)
    ))
}

/// The board name after the ATOM strings and a CR LF (atom_get_vbios_name).
fn name(r: &Reader<'_>) -> Option<String> {
    let strings = r.u8("ATOM.number_of_strings", NUMBER_OF_STRINGS).ok()?;
    if strings == 0 {
        return None;
    }
    let mut at = usize::from(r.u16("ATOM.string_start", STRING_START).ok()?);
    for _ in 0..strings {
        // Each string is NUL-terminated; bound the skip so a missing NUL cannot run on.
        let len = (0..256).find(|&i| r.u8("ATOM.string", at + i).ok() == Some(0))?;
        at += len + 1;
    }
    let name = ascii(r, at + 2, 63, |b| (0x20..0x7F).contains(&b))?;
    let name = name.trim_end().to_string();
    (!name.is_empty()).then_some(name)
}
