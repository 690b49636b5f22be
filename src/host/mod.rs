//! Host readiness for VFIO passthrough: the checks behind `vfiotool check` ([`check`]), the
//! boot loader that owns the kernel command line ([`bootloader`]), the kernel log ([`kmsg`]) and
//! the per-device facts `check` and `explain` share ([`devfacts`]).
//!
//! Owns: reads of `/proc`, `/etc`, `/lib/modules` and `/boot`, always through a [`HostRoot`],
//! so every check runs the same on the live host and on a tree saved by `vfiotool capture`.
//! Must not: write anything, issue ioctls itself (it calls `vfio/`'s safe wrappers), parse ROMs.

pub mod bootloader;
pub mod capture;
pub mod check;
pub mod devfacts;
pub mod holders;
pub mod intremap;
pub mod kmsg;
pub mod modprobe;

use std::path::{Path, PathBuf};

use crate::error::PathError;
use crate::pci::sysfs::{self, SysfsRoot};

/// Where the host's `/sys`, `/proc`, `/etc` and the rest of its file system are.
///
/// `HostRoot::live()` is the running host. `HostRoot::under(dir)` reads a captured tree: `dir/sys`,
/// `dir/proc`, `dir/etc`, `dir/lib/modules`, ... `with_sysfs(dir)` changes only `/sys` (like
/// `lspci -A linux-sysfs -O sysfs.path=`): the rest stays the live host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    pub sysfs: SysfsRoot,
    /// `/proc`.
    pub proc_dir: PathBuf,
    /// The file system root for everything else (`/etc`, `/lib/modules`, `/boot`).
    pub base: PathBuf,
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::live()
    }
}

impl HostRoot {
    pub fn live() -> Self {
        HostRoot {
            sysfs: SysfsRoot::live(),
            proc_dir: PathBuf::from("/proc"),
            base: PathBuf::from("/"),
        }
    }

    /// The one resolver of `--root` and `--sysfs-root`: `--root DIR` reads a captured host
    /// under DIR; `--sysfs-root DIR` replaces only /sys (of --root's host or the live one).
    pub fn from_args(args: &crate::cli::RootArgs) -> Self {
        let root = match &args.root {
            Some(dir) => HostRoot::under(dir),
            None => HostRoot::live(),
        };
        match &args.sysfs_root {
            Some(dir) => root.with_sysfs(dir),
            None => root,
        }
    }

    /// A whole captured host under `dir` (`dir/sys`, `dir/proc`, `dir/etc`, ...).
    pub fn under(dir: &Path) -> Self {
        HostRoot {
            sysfs: SysfsRoot::new(dir.join("sys")),
            proc_dir: dir.join("proc"),
            base: dir.to_path_buf(),
        }
    }

    /// Replace only the sysfs root.
    pub fn with_sysfs(mut self, dir: &Path) -> Self {
        self.sysfs = SysfsRoot::new(dir);
        self
    }

    /// Does every path point at the running host?
    pub fn is_live(&self) -> bool {
        self.sysfs.is_live() && self.proc_dir == Path::new("/proc") && self.base == Path::new("/")
    }

    /// `<proc>/<rel>`.
    pub fn proc_path(&self, rel: &str) -> PathBuf {
        self.proc_dir.join(rel)
    }

    /// An absolute host path in this view: `/sys/...` under the sysfs root, `/proc/...` under
    /// the proc root, anything else (`/dev`, `/run`, `/etc`) under the base. The one place that
    /// maps a host path to where this view keeps it.
    pub fn host_path(&self, abs: &str) -> PathBuf {
        // Whole components only (`Path::strip_prefix`): /sysfoo is not under /sys.
        let p = Path::new(abs);
        let inside = |dir: &Path, rest: &Path| {
            if rest.as_os_str().is_empty() {
                dir.to_path_buf()
            } else {
                dir.join(rest)
            }
        };
        if let Ok(rest) = p.strip_prefix("/sys") {
            inside(self.sysfs.path(), rest)
        } else if let Ok(rest) = p.strip_prefix("/proc") {
            inside(&self.proc_dir, rest)
        } else {
            self.path(abs)
        }
    }

    /// `<base>/<rel>` for an absolute-style path without the leading `/` (`"etc/default/grub"`).
    pub fn path(&self, rel: &str) -> PathBuf {
        under(&self.base, rel)
    }

    /// A small text file under `/proc`, `None` when absent.
    pub fn read_proc(&self, rel: &str) -> Result<Option<String>, PathError> {
        read_text_file(&self.proc_path(rel))
    }

    /// A small text file under the base root, `None` when absent.
    pub fn read_file(&self, rel: &str) -> Result<Option<String>, PathError> {
        read_text_file(&self.path(rel))
    }

    /// The kernel release (`/proc/sys/kernel/osrelease`), e.g. `6.1.0-27-amd64`.
    pub fn kernel_release(&self) -> Option<String> {
        self.read_proc("sys/kernel/osrelease")
            .ok()
            .flatten()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// `/lib/modules/<release>` (or `/usr/lib/modules/<release>`), when it exists.
    pub fn modules_dir(&self) -> Option<PathBuf> {
        let release = self.kernel_release()?;
        ["lib/modules", "usr/lib/modules"]
            .iter()
            .map(|d| self.path(d).join(&release))
            .find(|p| p.is_dir())
    }
}

/// `abs` (an absolute path on the host, `/etc/modprobe.d`) below `root` (`/` on the live host,
/// a capture or scratch directory otherwise). The one place that joins a host path to a root.
pub fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Whole text files under /proc and /etc are small; the limit only guards against surprises.
const MAX_TEXT: u64 = 16 * 1024 * 1024;

fn read_text_file(path: &Path) -> Result<Option<String>, PathError> {
    Ok(sysfs::read_bytes(path, MAX_TEXT)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_follow_each_component_of_the_root() {
        let r = HostRoot::under(Path::new("/cap")).with_sysfs(Path::new("/other-sys"));
        assert_eq!(r.host_path("/sys/bus/pci"), Path::new("/other-sys/bus/pci"));
        assert_eq!(r.host_path("/sys"), Path::new("/other-sys"));
        assert_eq!(r.host_path("/proc/interrupts"), Path::new("/cap/proc/interrupts"));
        assert_eq!(r.host_path("/dev/vfio"), Path::new("/cap/dev/vfio"));
        // Only whole components: /sysfoo is not under /sys.
        assert_eq!(r.host_path("/sysfoo"), Path::new("/cap/sysfoo"));
        assert_eq!(
            HostRoot::live().host_path("/run/vfiotool"),
            Path::new("/run/vfiotool")
        );
    }
}
