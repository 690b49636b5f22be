//! Which processes hold a file open or mapped: the one bounded scan of `/proc/<pid>/fd` (and
//! `maps`), used by bind/unbind (who keeps a driver busy), the iommufd diagnosis (who owns a
//! group) and `explain` (who holds /dev/vfio/N).
//!
//! Bounded: at most 65,536 processes, 65,536 fds each and a million fd links in all, so the
//! scan stays well under a second; vfiotool's own process is left out.

use std::fs;
use std::path::Path;

use super::HostRoot;
use crate::pci::sysfs;

/// One process that holds something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The process name (`/proc/<pid>/comm`), empty when unreadable.
    pub comm: String,
    /// What it holds: the fd link target, or `<file> mapped`.
    pub what: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {}) has {} open", self.comm, self.pid, self.what)
    }
}

/// What a scan looks for.
pub struct Wanted<'a> {
    /// Does an open fd that links to this target count?
    pub fd: &'a dyn Fn(&Path) -> bool,
    /// A path whose mapping (a BAR mmapped through sysfs `resource` files) counts, if any.
    pub mapped: Option<&'a str>,
    /// Stop after this many holders.
    pub max: usize,
}

/// The processes of `root`'s /proc that hold what `want` says. A /proc that cannot be listed
/// gives no holders: this is a diagnosis for a message, never a guard.
pub fn scan(root: &HostRoot, want: &Wanted) -> Vec<Holder> {
    let mut out = Vec::new();
    let me = std::process::id();
    let Ok(procs) = fs::read_dir(&root.proc_dir) else {
        return out;
    };
    let mut budget: usize = 1_000_000;
    for p in procs.filter_map(|e| e.ok()).take(65_536) {
        if budget == 0 || out.len() >= want.max {
            break;
        }
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let fd_hit = fs::read_dir(p.path().join("fd")).ok().and_then(|fds| {
            fds.filter_map(|e| e.ok()).take(65_536).find_map(|fd| {
                budget = budget.saturating_sub(1);
                let t = fs::read_link(fd.path()).ok()?;
                (want.fd)(&t).then(|| t.to_string_lossy().into_owned())
            })
        });
        let hit = fd_hit.or_else(|| {
            let dev = want.mapped?;
            let maps = sysfs::read_bytes(&p.path().join("maps"), 16 << 20).ok()??;
            let maps = String::from_utf8_lossy(&maps);
            maps.lines()
                .take(1 << 16)
                .find(|l| l.contains(dev))
                .map(|l| format!("{} mapped", l.split_whitespace().last().unwrap_or("")))
        });
        if let Some(what) = hit {
            let comm = sysfs::read_text(&p.path().join("comm"))
                .ok()
                .flatten()
                .unwrap_or_default();
            out.push(Holder { pid, comm, what });
        }
    }
    out
}

/// Processes that have one of `nodes` open.
pub fn of_nodes(root: &HostRoot, nodes: &[String], max: usize) -> Vec<Holder> {
    let fd = |t: &Path| nodes.iter().any(|n| t.as_os_str() == n.as_str());
    scan(
        root,
        &Wanted {
            fd: &fd,
            mapped: None,
            max,
        },
    )
}
