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
///
/// The string is the first printable run of at least [`MIN_STRING`] characters that holds both
/// "GOP" and "Rev.": UTF-16LE runs at even offsets first, then at odd offsets, then ASCII runs.
/// Each run is found from its "Rev." (memchr's substring search) and grown to its ends, so only
/// the runs that can match are ever built; collecting every string of the driver first cost
/// more than the rest of `rom parse`.
pub fn amd_version_string(driver: &[u8]) -> Option<(String, String)> {
    let text = utf16_run(driver, 0)
        .or_else(|| utf16_run(driver, 1))
        .or_else(|| ascii_run(driver))?;
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

/// Shortest run counted as a string (as `strings` counts them).
const MIN_STRING: usize = 8;

fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// The first UTF-16LE run (code units 0x20..0x7E, counted from `align`) holding "GOP" and "Rev.".
fn utf16_run(data: &[u8], align: usize) -> Option<String> {
    let units = data.get(align..)?;
    // Whole code units only: a trailing odd byte is not part of any run.
    let units = &units[..units.len() & !1];
    let is_char = |at: usize| printable(units[at]) && units[at + 1] == 0;
    let mut done = 0; // runs end before here were already judged
    for at in memchr::memmem::find_iter(units, b"R\0e\0v\0.\0") {
        if at % 2 != 0 || at < done {
            continue;
        }
        let mut first = at;
        while first >= 2 && is_char(first - 2) {
            first -= 2;
        }
        let mut end = at;
        while end + 2 <= units.len() && is_char(end) {
            end += 2;
        }
        done = end;
        let text: String = units[first..end]
            .iter()
            .step_by(2)
            .map(|&b| char::from(b))
            .collect();
        if text.len() >= MIN_STRING && text.contains("GOP") {
            return Some(text);
        }
    }
    None
}

/// The first ASCII run (bytes 0x20..0x7E) holding "GOP" and "Rev.".
fn ascii_run(data: &[u8]) -> Option<String> {
    let mut done = 0;
    for at in memchr::memmem::find_iter(data, b"Rev.") {
        if at < done {
            continue;
        }
        let first = data[..at]
            .iter()
            .rposition(|&b| !printable(b))
            .map_or(0, |p| p + 1);
        let end = data[at..]
            .iter()
            .position(|&b| !printable(b))
            .map_or(data.len(), |p| at + p);
        done = end;
        let run = &data[first..end];
        if run.len() >= MIN_STRING && memchr::memmem::find(run, b"GOP").is_some() {
            return Some(run.iter().map(|&b| char::from(b)).collect());
        }
    }
    None
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

    /// The plain definition: every printable run, UTF-16LE at even then odd offsets, then
    /// ASCII, in order; the first with both "GOP" and "Rev." is the string.
    fn first_string_by_collecting_all(data: &[u8]) -> Option<String> {
        let mut runs = Vec::new();
        for align in 0..2 {
            let mut current = String::new();
            for pair in data.get(align..).unwrap_or_default().chunks_exact(2) {
                if printable(pair[0]) && pair[1] == 0 {
                    current.push(char::from(pair[0]));
                } else if !current.is_empty() {
                    runs.push(std::mem::take(&mut current));
                }
            }
            runs.push(current);
        }
        for run in data.split(|&b| !printable(b)) {
            runs.push(run.iter().map(|&b| char::from(b)).collect());
        }
        runs.into_iter()
            .find(|s| s.len() >= MIN_STRING && s.contains("GOP") && s.contains("Rev."))
    }

    /// A string whose "Rev." is not followed by a version gives no answer either way.
    fn has_version(text: &str) -> bool {
        text.split("Rev.").nth(1).is_some_and(|v| {
            v.chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .any(|c| c.is_ascii_digit())
        })
    }

    /// Inputs made of pieces of the strings, in both encodings and at both alignments, with
    /// separators: runs that hold one word but not the other, runs too short, several "Rev."
    /// in one run.
    fn spliced(parts: &[(u8, u8)]) -> Vec<u8> {
        let pieces: [&[u8]; 6] = [b"GOP", b"Rev.", b"Rev.1.2.", b" AMD ", b"x", b"\0"];
        let mut data = Vec::new();
        for &(piece, how) in parts {
            let piece = pieces[usize::from(piece % 6)];
            match how % 4 {
                0 => data.extend(piece.iter().flat_map(|&b| [b, 0])),
                1 => data.extend_from_slice(piece),
                2 => data.push(how / 4 % 4 * 0x20),
                _ => data.push(b'A' + how / 4 % 3),
            }
        }
        data
    }

    #[test]
    fn spliced_inputs_hold_strings_of_every_kind() {
        // The generator below reaches UTF-16 and ASCII answers, and runs without a version.
        let utf16 = spliced(&[(0, 0), (3, 0), (2, 0), (1, 2)]);
        assert_eq!(
            first_string_by_collecting_all(&utf16).as_deref(),
            Some("GOP AMD Rev.1.2.")
        );
        assert_eq!(amd_version_string(&utf16).map(|(_, v)| v).as_deref(), Some("1.2"));
        let ascii = spliced(&[(0, 1), (2, 1), (5, 1)]);
        assert_eq!(amd_version_string(&ascii).map(|(_, v)| v).as_deref(), Some("1.2"));
        let odd = [vec![b'Q'], spliced(&[(3, 0), (0, 0), (2, 0)])].concat();
        assert_eq!(
            amd_version_string(&odd).map(|(t, _)| t).as_deref(),
            Some(" AMD GOPRev.1.2.")
        );
        let bare = spliced(&[(0, 1), (1, 1), (4, 1)]);
        assert!(first_string_by_collecting_all(&bare).is_some_and(|t| !has_version(&t)));
        assert_eq!(amd_version_string(&bare), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]
        #[test]
        fn searching_from_rev_finds_the_string_collecting_all_would(
            parts in proptest::collection::vec((0u8..6, proptest::prelude::any::<u8>()), 0..24),
        ) {
            let data = spliced(&parts);
            let expected = first_string_by_collecting_all(&data).filter(|t| has_version(t));
            let got = amd_version_string(&data).map(|(text, _)| text);
            proptest::prop_assert_eq!(got, expected, "input {:?}", data);
        }
    }
}
