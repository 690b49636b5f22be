//! The one reader of modprobe.d (`modprobe.d(5)`), for `check`, `bind` and `persist`.
//!
//! modprobe reads `*.conf` from /etc/modprobe.d, /run/modprobe.d, /usr/local/lib/modprobe.d,
//! /usr/lib/modprobe.d and /lib/modprobe.d; a file name in an earlier directory hides the same
//! name in a later one (that is how /etc overrides a packaged file). A `\` at the end of a line
//! continues it; `#` starts a comment. Module names match with `-` and `_` equal, never as globs.
//!
//! Fails closed: a file or directory that exists but cannot be read is listed in
//! [`ModprobeConf::unreadable`], so a guard asking "is vfio-pci blacklisted?" can say it could
//! not tell instead of answering "no".

use std::collections::BTreeSet;

use super::HostRoot;
use crate::pci::sysfs;

/// The directories modprobe reads, in priority order.
pub const DIRS: &[&str] = &[
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "usr/lib/modprobe.d",
    "lib/modprobe.d",
];

/// The commands of modprobe.d(5) this crate acts on; the others are kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Blacklist,
    Options,
    Softdep,
    Install,
    Other,
}

/// One logical line (continuations joined, comment removed), with its file.
#[derive(Debug, Clone)]
pub struct ConfLine {
    /// The file, as an absolute host path (`/etc/modprobe.d/vfio.conf`).
    pub file: String,
    pub words: Vec<String>,
}

impl ConfLine {
    pub fn command(&self) -> Command {
        match self.words.first().map(String::as_str) {
            Some("blacklist") => Command::Blacklist,
            Some("options") => Command::Options,
            Some("softdep") => Command::Softdep,
            Some("install") => Command::Install,
            _ => Command::Other,
        }
    }

    /// Is this line about `module` (its second word, `-` and `_` alike)?
    pub fn names(&self, module: &str) -> bool {
        self.words.get(1).is_some_and(|m| norm(m) == norm(module))
    }
}

/// Every modprobe.d line of a host, and the files that could not be read.
#[derive(Debug, Clone, Default)]
pub struct ModprobeConf {
    pub lines: Vec<ConfLine>,
    /// `path: error` for each file or directory that exists but could not be read.
    pub unreadable: Vec<String>,
}

pub fn norm(module: &str) -> String {
    module.replace('-', "_")
}

impl ModprobeConf {
    /// Read every modprobe.d file of `root` the way modprobe does.
    pub fn read(root: &HostRoot) -> Self {
        let mut conf = ModprobeConf::default();
        let mut seen = BTreeSet::new();
        for dir in DIRS {
            let names = match sysfs::dir_names(&root.path(dir)) {
                Ok(n) => n,
                Err(e) => {
                    conf.unreadable.push(e.to_string());
                    continue;
                }
            };
            for name in names.iter().filter(|n| n.ends_with(".conf")).take(4096) {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let rel = format!("{dir}/{name}");
                match root.read_file(&rel) {
                    Ok(Some(text)) => conf.lines.extend(parse(&format!("/{rel}"), &text)),
                    Ok(None) => {}
                    Err(e) => conf.unreadable.push(e.to_string()),
                }
            }
        }
        conf
    }

    /// The first `blacklist MODULE` line.
    pub fn blacklist(&self, module: &str) -> Option<&ConfLine> {
        self.lines
            .iter()
            .find(|l| l.command() == Command::Blacklist && l.names(module))
    }

    /// Every line of `command` about `module`.
    pub fn about(&self, command: Command, module: &str) -> Vec<&ConfLine> {
        self.lines
            .iter()
            .filter(|l| l.command() == command && l.names(module))
            .collect()
    }
}

/// The logical lines of one file.
pub fn parse(file: &str, text: &str) -> Vec<ConfLine> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines().take(1 << 16) {
        let line = raw.split('#').next().unwrap_or_default();
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let words: Vec<String> = pending.split_whitespace().map(str::to_string).collect();
        pending.clear();
        if !words.is_empty() {
            out.push(ConfLine {
                file: file.to_string(),
                words,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn etc_hides_lib_and_continuations_join() {
        let t = tempfile::tempdir().unwrap();
        let r = HostRoot::under(t.path());
        fs::create_dir_all(t.path().join("etc/modprobe.d")).unwrap();
        fs::create_dir_all(t.path().join("lib/modprobe.d")).unwrap();
        fs::write(t.path().join("lib/modprobe.d/a.conf"), "blacklist vfio_pci\n").unwrap();
        fs::write(
            t.path().join("etc/modprobe.d/a.conf"),
            "options vfio-pci \\\n ids=10de:1b80 # x\n",
        )
        .unwrap();
        fs::write(t.path().join("lib/modprobe.d/b.txt"), "blacklist vfio_pci\n").unwrap();
        let c = ModprobeConf::read(&r);
        assert!(c.blacklist("vfio-pci").is_none(), "{:?}", c.lines);
        let o = c.about(Command::Options, "vfio_pci");
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].words, ["options", "vfio-pci", "ids=10de:1b80"]);
        assert_eq!(o[0].file, "/etc/modprobe.d/a.conf");
        assert!(c.unreadable.is_empty());
    }

    #[test]
    fn an_unreadable_file_is_listed() {
        let t = tempfile::tempdir().unwrap();
        let r = HostRoot::under(t.path());
        fs::create_dir_all(t.path().join("etc/modprobe.d")).unwrap();
        nix::unistd::mkfifo(
            &t.path().join("etc/modprobe.d/x.conf"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        let c = ModprobeConf::read(&r);
        assert_eq!(c.unreadable.len(), 1);
        assert!(c.unreadable[0].contains("x.conf"), "{:?}", c.unreadable);
    }
}
