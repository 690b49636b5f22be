//! The kernel log, read the way `dmesg` does: `/dev/kmsg` opened non-blocking, one record per
//! read(2) (`prio,seq,usec,flags;message`, continuation lines start with a space), until
//! EAGAIN. Under `--root` the same path is a plain file that `capture` wrote in that format;
//! plain `dmesg` or `journalctl -k` text saved there is read too (`[ 1.23] ` prefixes and
//! syslog prefixes are stripped down to the kernel message).
//!
//! Bounded: at most [`MAX_BYTES`] and [`MAX_RECORDS`]. Reading /dev/kmsg needs root when
//! `kernel.dmesg_restrict=1` (the default on Debian, Ubuntu, Proxmox): then the log is
//! `Unavailable` with the reason, never an error.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

use crate::host::HostRoot;

pub const MAX_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_RECORDS: usize = 200_000;
/// Where `capture` writes the log and `--root` reads it back.
pub const REL_PATH: &str = "dev/kmsg";

/// The kernel log as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelLog {
    Read {
        /// The messages, prefixes stripped.
        lines: Vec<String>,
        /// Raw records (for `capture`), as read.
        raw: Vec<String>,
        source: String,
        /// A bound was hit: older records are missing.
        truncated: bool,
    },
    Unavailable(String),
}

impl KernelLog {
    pub fn lines(&self) -> &[String] {
        match self {
            KernelLog::Read { lines, .. } => lines,
            KernelLog::Unavailable(_) => &[],
        }
    }
}

/// The message of one record or text line.
pub fn message(line: &str) -> &str {
    let mut s = line;
    // /dev/kmsg: "6,1234,5678,-;message" (the header has no spaces and ends at ';').
    if let Some((head, rest)) = s.split_once(';') {
        if !head.is_empty() && head.split(',').count() >= 3 && !head.contains(' ') {
            s = rest;
        }
    }
    // journalctl -k / syslog: "Nov 29 06:00:00 host kernel: message".
    if let Some(i) = s.find(" kernel: ") {
        s = &s[i + " kernel: ".len()..];
    }
    // dmesg: "[    1.234567] message".
    let t = s.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((ts, msg)) = rest.split_once(']') {
            if ts.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
                return msg.trim_start();
            }
        }
    }
    s
}

/// Read the log of `root` (live: /dev/kmsg; captured: the file `capture` wrote).
pub fn read(root: &HostRoot) -> KernelLog {
    let path = root.path(REL_PATH);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return KernelLog::Unavailable(format!("/{REL_PATH} does not exist"))
        }
        Err(e) => return KernelLog::Unavailable(format!("{}: {e}", path.display())),
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return KernelLog::Unavailable(format!(
                "{}: permission denied (kernel.dmesg_restrict: run as root)",
                path.display()
            ))
        }
        Err(e) => return KernelLog::Unavailable(format!("{}: {e}", path.display())),
    };
    let mut raw = Vec::new();
    let mut truncated = false;
    if meta.file_type().is_char_device() {
        // One record per read; a record is at most about 8 KiB (PRINTK_MESSAGE_MAX).
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0usize;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    // Continuation lines (" SUBSYSTEM=pci") carry metadata only.
                    if let Some(first) = rec.lines().next() {
                        raw.push(first.to_string());
                    }
                    if total > MAX_BYTES || raw.len() >= MAX_RECORDS {
                        truncated = true;
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // EPIPE: the record we were about to read was overwritten; go on.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return KernelLog::Unavailable(format!("{}: {e}", path.display())),
            }
        }
    } else {
        let mut bytes = Vec::new();
        if let Err(e) = (&mut file).take(MAX_BYTES as u64 + 1).read_to_end(&mut bytes) {
            return KernelLog::Unavailable(format!("{}: {e}", path.display()));
        }
        truncated = bytes.len() > MAX_BYTES;
        bytes.truncate(MAX_BYTES);
        let text = String::from_utf8_lossy(&bytes);
        for l in text.lines() {
            if l.starts_with(' ') && raw.last().is_some() && !l.trim_start().starts_with('[') {
                continue; // a /dev/kmsg continuation line
            }
            if raw.len() >= MAX_RECORDS {
                truncated = true;
                break;
            }
            raw.push(l.to_string());
        }
    }
    let lines = raw.iter().map(|r| message(r).to_string()).collect();
    KernelLog::Read {
        lines,
        raw,
        // The same text for the live host and a captured tree (reports compare equal).
        source: format!("/{REL_PATH}"),
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_every_format() {
        assert_eq!(
            message("6,1234,5678,-;DMAR: IOMMU enabled"),
            "DMAR: IOMMU enabled"
        );
        assert_eq!(
            message("[    0.954319] DMAR-IR: x2apic is disabled"),
            "DMAR-IR: x2apic is disabled"
        );
        assert_eq!(
            message("Dec 19 16:35:05 cerberus kernel: DMAR-IR: Enabled IRQ remapping in xapic mode"),
            "DMAR-IR: Enabled IRQ remapping in xapic mode"
        );
        assert_eq!(
            message(
                "Feb 16 11:20:13 santech kernel: [    0.041060] DMAR-IR: Use 'intremap=no_x2apic_optout'"
            ),
            "DMAR-IR: Use 'intremap=no_x2apic_optout'"
        );
        assert_eq!(
            message("plain; text with a semicolon"),
            "plain; text with a semicolon"
        );
    }

    #[test]
    fn captured_file_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::under(dir.path());
        assert!(matches!(read(&root), KernelLog::Unavailable(m) if m.contains("does not exist")));
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(
            dir.path().join("dev/kmsg"),
            "4,1,2,-;first\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n6,2,3,-;second\n",
        )
        .unwrap();
        let log = read(&root);
        assert_eq!(log.lines(), ["first", "second"]);
    }
}
