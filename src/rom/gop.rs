//! Telling a GOP driver from any EFI image: protocol GUIDs in the decompressed driver, and the
//! GOP driver version where the vendor leaves one (AMD's version string).

/// EFI_GRAPHICS_OUTPUT_PROTOCOL 9042a9de-23dc-4a38-96fb-7aded080516a, in its in-memory layout.
pub const GOP_GUID: [u8; 16] = guid_bytes(
    0x9042a9de,
    0x23dc,
    0x4a38,
    [0x96, 0xfb, 0x7a, 0xde, 0xd0, 0x80, 0x51, 0x6a],
);
/// EFI_UGA_DRAW_PROTOCOL 982c298b-f4fa-41cb-b838-77aa688fb839 (Apple-era EFI display drivers).
pub const UGA_GUID: [u8; 16] = guid_bytes(
    0x982c298b,
    0xf4fa,
    0x41cb,
    [0xb8, 0x38, 0x77, 0xaa, 0x68, 0x8f, 0xb8, 0x39],
);

/// The little-endian layout of an EFI GUID as it is stored in a driver binary.
pub const fn guid_bytes(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6],
        d4[7],
    ]
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // memchr's SIMD substring search: the byte-by-byte window compare was 81% of `rom parse`.
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// The version string AMD GOP drivers carry ("AMD GOP X64 Release Driver Rev.1.65.0.15.50.Sep
/// 28 2017..."), stored as UTF-16LE, sometimes ASCII. Returns (the whole string, the version).
pub fn amd_version_string(driver: &[u8]) -> Option<(String, String)> {
    // Collecting every string of a driver costs more than the rest of `rom parse`; a driver
    // without "Rev." in either encoding (every NVIDIA one) cannot hold the string.
    let finder = |needle: &[u8]| memchr::memmem::find(driver, needle).is_some();
    if !finder(b"Rev.") && !finder(b"R\0e\0v\0.\0") {
        return None;
    }
    let text = utf16_strings(driver)
        .into_iter()
        .chain(ascii_strings(driver))
        .find(|s| s.contains("GOP") && s.contains("Rev."))?;
    let rev = text.split("Rev.").nth(1)?;
    let version: String = rev
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<String>()
        .trim_end_matches('.')
        .to_string();
    if version.is_empty() {
        return None;
    }
    Some((text, version))
}

const MIN_STRING: usize = 8;
/// A bound on the strings collected from one driver, so a pathological input cannot make
/// this allocate without limit.
const MAX_STRINGS: usize = 100_000;

fn ascii_strings(data: &[u8]) -> Vec<String> {
    data.split(|b| !(0x20..0x7f).contains(b))
        .filter(|run| run.len() >= MIN_STRING)
        .take(MAX_STRINGS)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect()
}

fn utf16_strings(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for start in 0..2 {
        let mut current = String::new();
        for pair in data.get(start..).unwrap_or_default().chunks_exact(2) {
            if (0x20..0x7f).contains(&pair[0]) && pair[1] == 0 {
                current.push(char::from(pair[0]));
            } else {
                if current.len() >= MIN_STRING && out.len() < MAX_STRINGS {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
        if current.len() >= MIN_STRING && out.len() < MAX_STRINGS {
            out.push(current);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_layout_matches_the_notes() {
        let expected = [
            0xde, 0xa9, 0x42, 0x90, 0xdc, 0x23, 0x38, 0x4a, 0x96, 0xfb, 0x7a, 0xde, 0xd0, 0x80, 0x51, 0x6a,
        ];
        assert_eq!(GOP_GUID, expected);
        assert_eq!(&UGA_GUID[..4], &[0x8b, 0x29, 0x2c, 0x98]);
    }

    #[test]
    fn finds_amd_version_in_utf16_and_ascii() {
        let s = "\u{1}AMD GOP X64 Release Driver Rev.1.65.0.15.50.Sep 28 2017.15:11:11";
        let mut utf16: Vec<u8> = vec![0xff, 0xff, 0xff];
        utf16.extend(s.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let (text, version) = amd_version_string(&utf16).unwrap();
        assert_eq!(version, "1.65.0.15.50");
        assert!(text.starts_with("AMD GOP X64"));
        let (_, v) = amd_version_string(b"\0\0AMD GOP ARM Driver Rev.2.0.1.\0").unwrap();
        assert_eq!(v, "2.0.1");
        assert!(amd_version_string(b"GOP without a revision").is_none());
    }
}
