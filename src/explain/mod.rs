//! `vfiotool explain`: find known VFIO failures in pasted text (Proxmox task logs, QEMU stderr,
//! libvirt errors, kernel log lines) and give, for each, the line that shows it, the cause and
//! the fix for this host.
//!
//! Owns: reading the input within bounds ([`read_input`]), matching it against the message
//! formats in [`patterns`], ranking the causes, and the fixes ([`fixes`]), which read the host
//! through a [`HostRoot`] (live or captured). Must not: write anything.
//!
//! Bounds: at most [`MAX_INPUT`] bytes are read (the rest is reported as not examined), lines
//! are cut at [`MAX_LINE`] bytes, and the regex crate matches in time linear in the input, so a
//! hostile paste costs at most a few hundred milliseconds.

pub mod fixes;
pub mod patterns;

use std::io::Read;
use std::path::Path;

use regex::{Regex, RegexSet};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::host::HostRoot;
pub use patterns::{CauseId, Source, PATTERNS};

pub const SCHEMA: &str = "vfiotool.explain/1";
/// The most input read: logs people paste are kilobytes; a whole journal is megabytes.
pub const MAX_INPUT: u64 = 8 * 1024 * 1024;
/// Longer lines are cut before matching (no message format is near this long).
pub const MAX_LINE: usize = 4096;

/// The text to explain.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file name, or `-` for stdin.
    pub name: String,
    pub text: String,
    pub bytes_read: u64,
    /// More than [`MAX_INPUT`] bytes were there: only the first part was read.
    pub truncated: bool,
}

/// Read at most [`MAX_INPUT`] bytes from `reader` and refuse what is not text.
pub fn read_input<R: Read>(name: &str, reader: R) -> Result<Input> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(Path::new(name), "reading", &e))?;
    let truncated = bytes.len() as u64 > MAX_INPUT;
    bytes.truncate(MAX_INPUT as usize);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::bad_input(format!(
            "{name}: empty input: paste the log lines that show the failure (vfiotool explain - < log.txt)"
        )));
    }
    if let Some(off) = bytes.iter().position(|&b| b == 0) {
        return Err(Error::bad_input(format!(
            "{name}: binary data (a NUL byte at offset {off}), not a log; explain reads text: dmesg, journalctl, QEMU or libvirt output"
        )));
    }
    // Control bytes other than tab, CR, LF, ESC (colour codes) and FF: more than 1 in 50 is not a log.
    let controls = bytes
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b | 0x0c))
        .count();
    if controls * 50 > bytes.len() {
        return Err(Error::bad_input(format!(
            "{name}: binary data ({controls} control bytes in {} read), not a log",
            bytes.len()
        )));
    }
    Ok(Input {
        name: name.to_string(),
        bytes_read: bytes.len() as u64,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    })
}

/// One recognised cause in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    pub id: CauseId,
    /// The first line that shows it (cut to 300 characters).
    pub evidence: String,
    /// 1-based line number of `evidence` in the input.
    pub line: usize,
    /// How many lines matched this cause.
    pub matches: usize,
    /// Whose message format matched first.
    pub source: Source,
    pub explanation: String,
    /// What to do on this host (one step per line).
    pub fix: String,
}

/// The `vfiotool.explain/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainReport {
    pub schema: &'static str,
    pub input: String,
    pub bytes_read: u64,
    pub truncated: bool,
    pub lines: usize,
    /// Where the facts for the fixes came from: `live` or the `--root` directory.
    pub host: String,
    /// Most likely cause first; empty when nothing was recognised.
    pub causes: Vec<Cause>,
}

/// What the scan found for one cause, before the fix is written.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: CauseId,
    pub evidence: String,
    pub line: usize,
    pub matches: usize,
    pub source: Source,
    /// Every match came from a pattern marked ambiguous.
    pub only_ambiguous: bool,
    /// Named captures of the first match (`group`, `addr`, `romfile`, ...).
    pub captures: Vec<(String, String)>,
    /// PCI addresses seen on the matching lines (at most 8, in order).
    pub addresses: Vec<String>,
    /// IOMMU groups named on the matching lines (at most 8).
    pub groups: Vec<u32>,
    /// The last line counted in `matches` (a line matching two formats counts once).
    pub last_line: usize,
}

impl Found {
    pub fn capture(&self, name: &str) -> Option<&str> {
        self.captures
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The compiled patterns (built once per run; about 40 small regexes).
pub struct Matcher {
    set: RegexSet,
    each: Vec<Regex>,
    addr: Regex,
}

impl Matcher {
    pub fn new() -> Matcher {
        // The patterns are constants checked by a unit test: a failure here is a programming
        // error in PATTERNS, not bad input.
        let set = RegexSet::new(PATTERNS.iter().map(|p| p.regex)).expect("PATTERNS compile");
        let each = PATTERNS
            .iter()
            .map(|p| Regex::new(p.regex).expect("PATTERNS compile"))
            .collect();
        let addr =
            Regex::new(r"(?i)\b(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b").expect("address regex");
        Matcher { set, each, addr }
    }
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher::new()
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Find every known cause in `text`, ranked (most likely first).
pub fn scan(m: &Matcher, text: &str) -> (Vec<Found>, usize) {
    let mut found: Vec<Found> = Vec::new();
    let mut lines = 0;
    for (n, raw) in text.lines().enumerate() {
        lines = n + 1;
        // libvirt and journald quote multi-line QEMU errors with a literal "\n".
        for piece in cut(raw, MAX_LINE).split("\\n") {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            for idx in m.set.matches(piece).iter() {
                record(m, &mut found, idx, piece, n + 1);
            }
        }
    }
    // EPERM from attaching a group is RMRR when the kernel said so.
    if found.iter().any(|f| f.id == CauseId::Rmrr) {
        found.retain(|f| !(f.id == CauseId::NoInterruptRemapping && f.only_ambiguous));
    }
    found.sort_by_key(|f| f.id);
    (found, lines)
}

fn record(m: &Matcher, found: &mut Vec<Found>, idx: usize, line: &str, n: usize) {
    let pat = &PATTERNS[idx];
    let caps = m.each[idx].captures(line);
    let addrs: Vec<String> = m
        .addr
        .find_iter(line)
        .map(|a| a.as_str().to_ascii_lowercase())
        .collect();
    let group = caps
        .as_ref()
        .and_then(|c| c.name("group"))
        .and_then(|g| g.as_str().parse::<u32>().ok());
    let f = match found.iter_mut().position(|f| f.id == pat.cause) {
        Some(i) => &mut found[i],
        None => {
            let captures = caps
                .as_ref()
                .map(|c| {
                    m.each[idx]
                        .capture_names()
                        .flatten()
                        .filter_map(|name| Some((name.to_string(), c.name(name)?.as_str().to_string())))
                        .collect()
                })
                .unwrap_or_default();
            found.push(Found {
                id: pat.cause,
                evidence: cut(line, 300).to_string(),
                line: n,
                matches: 0,
                source: pat.source,
                only_ambiguous: true,
                captures,
                addresses: Vec::new(),
                groups: Vec::new(),
                last_line: 0,
            });
            let last = found.len() - 1;
            &mut found[last]
        }
    };
    // One line can match two formats of one cause: count it once.
    if f.last_line != n {
        f.matches += 1;
        f.last_line = n;
    }
    f.only_ambiguous &= pat.ambiguous;
    for a in addrs {
        if f.addresses.len() < 8 && !f.addresses.contains(&a) {
            f.addresses.push(a);
        }
    }
    if let Some(g) = group {
        if f.groups.len() < 8 && !f.groups.contains(&g) {
            f.groups.push(g);
        }
    }
}

/// Scan `input` and write the fixes from the host at `root`.
pub fn explain(input: &Input, root: &HostRoot) -> ExplainReport {
    let matcher = Matcher::new();
    let (found, lines) = scan(&matcher, &input.text);
    let ctx = fixes::Context::new(root);
    let causes = found
        .iter()
        .map(|f| {
            let (explanation, fix) = fixes::explain_cause(f, &ctx);
            Cause {
                id: f.id,
                evidence: f.evidence.clone(),
                line: f.line,
                matches: f.matches,
                source: f.source,
                explanation,
                fix,
            }
        })
        .collect();
    ExplainReport {
        schema: SCHEMA,
        input: input.name.clone(),
        bytes_read: input.bytes_read,
        truncated: input.truncated,
        lines,
        host: if root.is_live() {
            "live".into()
        } else {
            root.base.display().to_string()
        },
        causes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<&'static str> {
        let (f, _) = scan(&Matcher::new(), text);
        f.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn ranking_and_rmrr_wins_over_ambiguous_eperm() {
        let t = "kvm: -device vfio-pci,host=0000:04:00.1: vfio 0000:04:00.1: failed to setup container for group 12: Failed to set iommu for container: Operation not permitted\n\
                 vfio-pci 0000:04:00.1: DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.\n";
        assert_eq!(ids(t), ["rmrr"]);
        let t = "qemu: vfio 0000:01:00.0: group 1 is not viable\\nPlease ensure all devices within the iommu_group are bound to their vfio bus driver.\n\
                 TASK ERROR: cannot prepare PCI pass-through, IOMMU not present\n";
        assert_eq!(ids(t), ["no_iommu", "group_not_viable"]);
        let (f, lines) = scan(&Matcher::new(), t);
        assert_eq!(lines, 2);
        assert_eq!(f[1].groups, [1]);
        assert_eq!(f[1].addresses, ["0000:01:00.0"]);
        assert_eq!(f[1].matches, 1);
    }

    #[test]
    fn bounds_and_refusals() {
        let e = read_input("x.bin", &b"abc\0def"[..]).unwrap_err();
        assert!(e.message.contains("NUL byte at offset 3"), "{}", e.message);
        let e = read_input("-", &b" \n\t\n"[..]).unwrap_err();
        assert!(e.message.starts_with("-: empty input"), "{}", e.message);
        let e = read_input("r", &[1u8, 2, 3, 4, 5, 6, 7, 8, b'a'][..]).unwrap_err();
        assert!(e.message.contains("control bytes"), "{}", e.message);
        let big = vec![b'a'; MAX_INPUT as usize + 10];
        let i = read_input("big", &big[..]).unwrap();
        assert!(i.truncated);
        assert_eq!(i.bytes_read, MAX_INPUT);
        // A single 8 MiB line is cut before matching and still scans.
        let (f, lines) = scan(&Matcher::new(), &i.text);
        assert!(f.is_empty());
        assert_eq!(lines, 1);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn matcher() -> &'static Matcher {
        static M: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
        M.get_or_init(Matcher::new)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        // Total on any text: no panic, ids ranked and unique, every count positive.
        #[test]
        fn scan_is_total(text in "(?s).{0,2000}", noise in proptest::collection::vec(0u8..=255, 0..512)) {
            let m = matcher();
            let mut t = text.clone();
            t.push_str(&String::from_utf8_lossy(&noise));
            t.push_str("\nvfio 0000:01:00.0: group 1 is not viable\n");
            let (found, lines) = scan(m, &t);
            prop_assert!(lines >= 1);
            prop_assert!(found.windows(2).all(|w| w[0].id < w[1].id));
            prop_assert!(found.iter().all(|f| f.matches >= 1 && f.line >= 1 && f.line <= lines));
            prop_assert!(found.iter().any(|f| f.id == CauseId::GroupNotViable));
            let _ = read_input("x", t.as_bytes());
        }
    }
}
