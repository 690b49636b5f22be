//! Which vBIOS is this: the identity users match downloads by, read from the vendor tables in the
//! x86 image the way the drivers read them (nouveau's BIT/BMP parsing, amdgpu's atom.c, Intel's
//! VBT header). Every read is bounds-checked; a table that is present but corrupt gives null
//! fields and a note, never a panic.

mod amd;
mod intel;
mod nvidia;

use serde::Serialize;

use super::chain::Image;
use super::reader::Reader;

/// `identity` in `vfiotool.rom/1`. Fields are null when the ROM does not carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// "nvidia", "amd", "intel", or null when no vendor table was found.
    pub vendor: Option<&'static str>,
    /// NVIDIA "94.04.6b.00.16"; AMD the string after "ATOMBIOSBK-AMD VER"; Intel "VBT 2.xx".
    pub version: Option<String>,
    /// AMD's part number ("113-1E3870U-O4B").
    pub part_number: Option<String>,
    /// As the vendor stores it: NVIDIA "07/14/21", AMD "2017/11/15 01:27" (as atom.c prints it).
    pub build_date: Option<String>,
    /// AMD's board name string, Intel's VBT signature.
    pub name: Option<String>,
    /// Which table it came from ("BIT", "BMP", "ATOM", "VBT").
    pub table: Option<&'static str>,
    /// Why something is null although its table is there.
    pub notes: Vec<String>,
}

/// Printable ASCII of at most `max` bytes from `at`, ending at the first byte outside `ok`.
pub(crate) fn ascii(r: &Reader<'_>, at: usize, max: usize, ok: impl Fn(u8) -> bool) -> Option<String> {
    let mut s = String::new();
    for i in 0..max {
        match r.u8("string", at.checked_add(i)?) {
            Ok(b) if ok(b) => s.push(char::from(b)),
            _ => break,
        }
    }
    (!s.is_empty()).then_some(s)
}

/// Where `needle` first occurs in `hay[start..=end]` (bounded by the data).
pub(crate) fn find(hay: &[u8], needle: &[u8], start: usize, end: usize) -> Option<usize> {
    let end = end.min(hay.len().saturating_sub(needle.len()));
    (start..=end).find(|&i| hay.get(i..i + needle.len()) == Some(needle))
}

/// Read the identity from the first x86 image the chain reaches (NVIDIA, AMD, Intel tables live
/// there); `rom` is the whole file, so table offsets past that image stay readable.
pub fn read(rom: &[u8], images: &[Image]) -> Identity {
    let Some(x86) = images.iter().find(|i| i.reachable && i.code_type == 0) else {
        return Identity::default();
    };
    let from = rom.get(x86.offset..).unwrap_or_default();
    let image_len = x86.length.min(from.len());
    match x86.vendor_id {
        0x10DE => nvidia::read(from, image_len),
        0x1002 => amd::read(from),
        0x8086 => intel::read(from, image_len),
        _ => {
            // Rebadged boards keep the GPU vendor's tables: try them in turn.
            let n = nvidia::read(from, image_len);
            if n.vendor.is_some() {
                return n;
            }
            let a = amd::read(from);
            if a.vendor.is_some() {
                return a;
            }
            intel::read(from, image_len)
        }
    }
}
