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
    // memchr's substring search over the window: the position-by-position slice compare this
    // replaced was a quarter of the time spent taking a ROM apart.
    let stop = end.saturating_add(needle.len()).min(hay.len());
    let window = hay.get(start..stop)?;
    memchr::memmem::find(window, needle).map(|at| start + at)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An x86 image body with a BIT table at 0x100 whose 'i' entry points at `data`.
    fn bit_image(count: u8, i_offset: u16, i_len: u16) -> Vec<u8> {
        let mut img = vec![0u8; 0x800];
        img[0x100..0x105].copy_from_slice(b"\xff\xb8BIT");
        img[0x108] = 0x0C; // header size
        img[0x109] = 6; // entry size
        img[0x10A] = count;
        let e = 0x10C;
        img[e] = b'i';
        img[e + 1] = 2;
        img[e + 2..e + 4].copy_from_slice(&i_len.to_le_bytes());
        img[e + 4..e + 6].copy_from_slice(&i_offset.to_le_bytes());
        img[0x400..0x405].copy_from_slice(&[0x00, 0x6b, 0x04, 0x94, 0x16]);
        img[0x40F..0x417].copy_from_slice(b"07/14/21");
        img
    }

    #[test]
    fn nvidia_bit_version_and_date() {
        let img = bit_image(1, 0x400, 0x60);
        let id = nvidia::read(&img, img.len());
        assert_eq!(id.version.as_deref(), Some("94.04.6b.00.16"));
        assert_eq!(id.build_date.as_deref(), Some("07/14/21"));
        assert!(id.notes.is_empty());
    }

    #[test]
    fn nvidia_bmp_version_on_cards_before_bit() {
        let mut img = vec![0u8; 0x200];
        img[0x40..0x45].copy_from_slice(b"\xff\x7fNV\x00");
        img[0x4A..0x4E].copy_from_slice(&[0x01, 0x22, 0x00, 0x05]);
        let id = nvidia::read(&img, img.len());
        assert_eq!(
            (id.table, id.version.as_deref()),
            (Some("BMP"), Some("05.00.22.01"))
        );
        let id = nvidia::read(&img[..0x4C], 0x4C);
        assert_eq!(id.version, None);
        assert!(id.notes[0].contains("BMP table at 0x40"), "{:?}", id.notes);
    }

    #[test]
    fn corrupt_nvidia_tables_give_null_and_a_note() {
        let img = bit_image(200, 0x400, 0x60);
        let id = nvidia::read(&img, img.len());
        assert_eq!((id.vendor, id.version.as_deref()), (Some("nvidia"), None));
        assert!(id.notes[0].contains("not a sane header"), "{:?}", id.notes);
        let img = bit_image(1, 0xfffe, 0x60);
        let id = nvidia::read(&img, img.len());
        assert_eq!(id.version, None);
        assert!(id.notes[0].contains("BIT 'i' data"), "{:?}", id.notes);
        // A BIT signature at the very end: the header is cut.
        let mut img = vec![0u8; 0x40];
        img[0x3b..0x40].copy_from_slice(b"\xff\xb8BIT");
        let id = nvidia::read(&img, img.len());
        assert!(id.notes[0].contains("cut by the end"), "{:?}", id.notes);
    }

    #[test]
    fn amd_atom_strings_as_atom_c_reads_them() {
        let mut img = vec![0u8; 0x400];
        img[0x48..0x4A].copy_from_slice(&0x200u16.to_le_bytes());
        img[0x204..0x208].copy_from_slice(b"ATOM");
        img[0x2F] = 2;
        img[0x6E..0x70].copy_from_slice(&0x100u16.to_le_bytes());
        img[0x100..0x10F].copy_from_slice(b"113-1E3870U-O4B");
        img[0x110..0x114].copy_from_slice(b"P20\0");
        img[0x114..0x116].copy_from_slice(b"\r\n");
        img[0x116..0x120].copy_from_slice(b"Board X   ");
        img[0x50..0x5E].copy_from_slice(b"11/15/17 01:27");
        img[0x300..0x312].copy_from_slice(b"ATOMBIOSBK-AMD VER");
        img[0x312..0x328].copy_from_slice(b"015.050.002.001.000000");
        let id = amd::read(&img);
        assert_eq!(id.part_number.as_deref(), Some("113-1E3870U-O4B"));
        assert_eq!(id.version.as_deref(), Some("015.050.002.001.000000"));
        assert_eq!(id.build_date.as_deref(), Some("2017/11/15 01:27"));
        assert_eq!(id.name.as_deref(), Some("Board X"));
        // A garbled date is null with a note; a string table without NULs ends at the bound.
        img[0x50..0x5E].copy_from_slice(b"garbage-date!!");
        img[0x100..0x200].fill(b'A');
        let id = amd::read(&img);
        assert_eq!(id.build_date, None);
        assert!(
            id.notes.iter().any(|n| n.contains("no MM/DD/YY")),
            "{:?}",
            id.notes
        );
        assert_eq!(id.name, None);
    }

    #[test]
    fn intel_vbt_signature_and_version() {
        let mut img = vec![0u8; 0x200];
        img[0x80..0x8C].copy_from_slice(b"$VBT SKYLAKE");
        img[0x94..0x96].copy_from_slice(&100u16.to_le_bytes());
        let id = intel::read(&img, img.len());
        assert_eq!(id.name.as_deref(), Some("$VBT SKYLAKE"));
        assert_eq!(id.version.as_deref(), Some("VBT 1.00"));
        let id = intel::read(&img[..0x90], 0x90);
        assert!(id.notes[0].contains("cut"), "{:?}", id.notes);
    }

    #[test]
    fn every_truncation_of_a_table_is_total() {
        let img = bit_image(1, 0x400, 0x60);
        for end in 0..img.len() {
            let _ = nvidia::read(&img[..end], end);
            let _ = amd::read(&img[..end]);
            let _ = intel::read(&img[..end], end);
        }
    }
}
