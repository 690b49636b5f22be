//! The sysfs, /proc and /dev view `bind`, `unbind` and `rom dump` need, under a root that tests
//! can point at a temporary tree. Reads never fail loudly on a missing attribute (the caller
//! decides what a missing value means); writes keep the path in their errors and run in a child
//! process with a deadline (`writer.rs`), because a driver's unbind can block forever in the
//! kernel and only a process can be left behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::PathError;
use crate::host::{holders, HostRoot};
use crate::output::Progress;
use crate::pci::address::{PciAddress, SlotAddress};
use crate::pci::device::{header_type_of_class, is_bridge_header};
use crate::pci::groups;
use crate::pci::sysfs::{self, SysfsRoot};

/// The host view `bind`, `unbind` and `rom dump` read and write: one [`HostRoot`] (the only
/// root type; it knows where /sys, /proc and the rest are) plus the write-side state.
#[derive(Debug, Clone)]
pub struct Host {
    root: HostRoot,
    /// A tree saved by `vfiotool capture` (untrusted, read-only): nothing is ever written into
    /// it, not even the ROM-enable writes a read of `rom` needs on a live /sys.
    pub captured: bool,
    /// Draw progress lines on a terminal for slow steps (off in `--json` mode and in tests).
    pub progress: bool,
}

/// Why a timed write did not succeed.
#[derive(Debug)]
pub enum WriteError {
    Io(io::Error),
    /// A dry run could not read the state the write would change (it stops there, like the
    /// real run would on an unreadable device).
    Read(PathError),
    /// Still blocked in the kernel after the deadline; process `pid` goes on with the write,
    /// which may complete later.
    TimedOut {
        after: Duration,
        pid: u32,
    },
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Io(e) => write!(f, "{e}"),
            WriteError::Read(e) => write!(f, "{e}"),
            WriteError::TimedOut { after, .. } => write!(f, "still blocked after {} s", after.as_secs_f32()),
        }
    }
}

/// A read that succeeded but gave something no kernel writes there.
fn invalid(path: PathBuf, what: String) -> PathError {
    PathError {
        path,
        action: "parse",
        source: io::Error::new(io::ErrorKind::InvalidData, what),
    }
}

impl Host {
    /// The running system (`/`).
    pub fn system() -> Self {
        Self::live_view(HostRoot::live())
    }

    /// A tree that mirrors `/` and stands for a live host (tests).
    pub fn at(root: impl AsRef<Path>) -> Self {
        Self::live_view(HostRoot::under(root.as_ref()))
    }

    /// A host view that is written to (the running host, or a test tree standing for one).
    pub fn live_view(root: HostRoot) -> Self {
        Host {
            root,
            captured: false,
            progress: false,
        }
    }

    /// A captured host (`--root CAPTURE`, resolved by [`HostRoot::from_args`]): read as it
    /// is, never written.
    pub fn captured(root: HostRoot) -> Self {
        Host {
            root,
            captured: true,
            progress: false,
        }
    }

    /// The view `--root`/`--sysfs-root` name (resolved by [`HostRoot::from_args`]): with
    /// `--root` a capture, never written; otherwise the live host (or its /sys elsewhere).
    pub fn from_args(args: &crate::cli::RootArgs) -> Self {
        let root = HostRoot::from_args(args);
        if args.root.is_some() {
            Self::captured(root)
        } else {
            Self::live_view(root)
        }
    }

    /// A captured tree under `dir` (tests).
    pub fn capture(dir: impl AsRef<Path>) -> Self {
        Self::captured(HostRoot::under(dir.as_ref()))
    }

    /// The same host, drawing progress lines for slow steps unless `json`.
    pub fn with_progress(mut self, json: bool) -> Self {
        self.progress = !json;
        self
    }

    /// The root of this view: where its /sys, /proc, /dev, /run and /etc are.
    pub fn root(&self) -> &HostRoot {
        &self.root
    }

    /// The same host as the read-only view `host/` uses (its /sys, /proc, /etc).
    pub fn host_root(&self) -> HostRoot {
        self.root.clone()
    }

    /// Does this view stand for the running host (`/`)?
    pub fn is_live(&self) -> bool {
        self.root.is_live()
    }

    /// An absolute host path (`/dev/vfio`, `/proc/interrupts`, `/sys/class/iommu`) in this view.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.host_path(abs)
    }

    /// The sysfs view of this host, through `pci::sysfs`, which owns every read of
    /// `/sys/bus/pci`.
    pub fn sysfs(&self) -> &SysfsRoot {
        &self.root.sysfs
    }

    pub fn device_dir(&self, addr: &PciAddress) -> PathBuf {
        self.sysfs().device_dir(addr)
    }

    /// Whether `addr` is a device here. A stat that fails for another reason than "not found"
    /// (permission, I/O) is an error that names the path, never "no such device".
    pub fn exists(&self, addr: &PciAddress) -> Result<bool, PathError> {
        let dir = self.device_dir(addr);
        dir.try_exists().map_err(|source| PathError {
            path: dir.clone(),
            action: "looking up",
            source,
        })
    }

    // Every read goes through `pci::sysfs`, the one reader of device attributes: a missing
    // attribute is `Ok(None)` (absent), anything else that stops the read is an error that
    // carries its path. Callers never take "unreadable" for "absent".
    fn attr(&self, addr: &PciAddress, name: &str) -> Result<Option<String>, PathError> {
        self.sysfs().read_device_attr(addr, name)
    }

    /// The bound driver's name, `None` when no driver is bound (no `driver` link).
    pub fn driver(&self, addr: &PciAddress) -> Result<Option<String>, PathError> {
        self.sysfs().read_device_link(addr, "driver")
    }

    /// The driver_override value, `None` when clear (the kernel prints `(null)`).
    pub fn driver_override(&self, addr: &PciAddress) -> Result<Option<String>, PathError> {
        Ok(self
            .attr(addr, "driver_override")?
            .filter(|s| !s.is_empty() && s != "(null)"))
    }

    /// The IOMMU group, `None` when the device has none (no `iommu_group` link: IOMMU off).
    pub fn iommu_group(&self, addr: &PciAddress) -> Result<Option<u32>, PathError> {
        match self.sysfs().read_device_link(addr, "iommu_group")? {
            None => Ok(None),
            Some(n) => n.parse().map(Some).map_err(|_| {
                invalid(
                    self.sysfs().device_attr(addr, "iommu_group"),
                    format!("not a group number: {n:?}"),
                )
            }),
        }
    }

    /// A hex attribute every PCI function has (`class`, `vendor`, `device`): missing or
    /// unparsable is an error naming the file.
    fn hex_attr(&self, addr: &PciAddress, name: &str) -> Result<u32, PathError> {
        let path = self.sysfs().device_attr(addr, name);
        match self.attr(addr, name)? {
            None => Err(PathError {
                path,
                action: "read",
                source: io::Error::from(io::ErrorKind::NotFound),
            }),
            Some(t) => sysfs::parse_hex(&t).ok_or_else(|| invalid(path, format!("not a hex number: {t:?}"))),
        }
    }

    /// The 24-bit class code (base class in the top byte).
    pub fn class(&self, addr: &PciAddress) -> Result<u32, PathError> {
        self.hex_attr(addr, "class")
    }

    pub fn ids(&self, addr: &PciAddress) -> Result<(u16, u16), PathError> {
        Ok((
            self.hex_attr(addr, "vendor")? as u16,
            self.hex_attr(addr, "device")? as u16,
        ))
    }

    /// `boot_vga` reads 1 on the GPU the firmware used (absent on all but display devices).
    pub fn boot_vga(&self, addr: &PciAddress) -> Result<bool, PathError> {
        Ok(self.attr(addr, "boot_vga")?.as_deref() == Some("1"))
    }

    /// Bridges are never bound: a `pci_bus/` directory, or the bridge rule of `pci::device`
    /// (header type 1 or 2, from config space or else from the class).
    pub fn is_bridge(&self, addr: &PciAddress) -> Result<bool, PathError> {
        let dir = self.device_dir(addr);
        if dir.join("pci_bus").is_dir() {
            return Ok(true);
        }
        // Only up to the header type byte: reading all of config space (4 KiB, one config
        // cycle per dword) costs milliseconds. A short or missing config falls back to the
        // class; an unreadable one is an error.
        let header =
            match sysfs::read_bytes(&dir.join("config"), 0x0f)?.and_then(|c| c.get(0x0e).map(|h| h & 0x7f)) {
                Some(h) => Some(h),
                None => header_type_of_class(self.class(addr)?),
            };
        Ok(is_bridge_header(header))
    }

    /// Every function present in `slot`, sorted.
    pub fn slot_functions(&self, slot: &SlotAddress) -> Result<Vec<PciAddress>, PathError> {
        let mut out = Vec::new();
        for a in (0..=crate::pci::address::MAX_FUNCTION).map(|f| slot.function(f)) {
            if self.exists(&a)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The devices of IOMMU group `group`, sorted.
    pub fn group_members(&self, group: u32) -> Result<Vec<PciAddress>, PathError> {
        groups::group_members(self.sysfs(), group)
    }

    pub fn driver_loaded(&self, driver: &str) -> bool {
        self.sysfs().driver_dir(driver).is_dir()
    }

    pub fn group_dev(&self, group: u32) -> PathBuf {
        self.path("/dev/vfio").join(group.to_string())
    }

    /// Write `value` to a sysfs attribute in a child process and give up waiting after
    /// `timeout` (the child is left to finish the write; see `writer.rs`).
    pub fn write_timed(&self, path: &Path, value: &str, timeout: Duration) -> Result<(), WriteError> {
        let child = super::writer::spawn(path, value).map_err(WriteError::Io)?;
        let start = Instant::now();
        let mut progress = Progress::new(!self.progress);
        // Poll in short steps: most writes take microseconds, and a slow one (an unbind waiting
        // for a busy driver) says so on a terminal.
        let mut step = Duration::from_micros(100);
        loop {
            if let Some(done) = child.try_wait() {
                return done.map_err(WriteError::Io);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                // Not killed (it cannot be while in the kernel) and not reaped: it ends when
                // the write returns, and init reaps it once vfiotool has exited.
                return Err(WriteError::TimedOut {
                    after: timeout,
                    pid: child.pid(),
                });
            }
            if waited >= Duration::from_secs(1) {
                progress.update(&format!(
                    "waiting for {} ({}s of {}s)",
                    path.display(),
                    waited.as_secs(),
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(step.min(timeout.saturating_sub(waited)));
            step = (step * 2).min(Duration::from_millis(50));
        }
    }

    /// Processes that hold something that keeps a driver busy with `addr`: open files under the
    /// device's sysfs directory, DRM/NVIDIA nodes, `/dev/vfio/N`, or a mapped BAR (resource
    /// file). Bounded scan of /proc.
    pub fn likely_holders(&self, addr: &PciAddress) -> Vec<String> {
        let dev_dir = self.device_dir(addr);
        let real_dev = fs::canonicalize(&dev_dir).unwrap_or(dev_dir);
        // A diagnostic, not a guard: an unreadable group only leaves its node out of the scan.
        let group_dev = self
            .iommu_group(addr)
            .ok()
            .flatten()
            .map(|g| format!("/dev/vfio/{g}"));
        let fd = |t: &Path| {
            let s = t.to_string_lossy();
            t.starts_with(&real_dev)
                || s.starts_with("/dev/dri/")
                || s.starts_with("/dev/nvidia")
                || group_dev.as_deref() == Some(&*s)
        };
        let dev = real_dev.to_string_lossy();
        let want = holders::Wanted {
            fd: &fd,
            mapped: Some(&dev),
            max: 16,
        };
        holders::scan(&self.root, &want)
            .iter()
            .map(|h| h.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_found_by_open_drm_nodes_and_mapped_resources() {
        let t = tempfile::tempdir().unwrap();
        let host = Host::at(t.path());
        let a = PciAddress::new(0, 1, 0, 0);
        let dev = t.path().join("sys/devices/pci0000:00").join(a.to_string());
        fs::create_dir_all(&dev).unwrap();
        fs::create_dir_all(t.path().join("sys/bus/pci/devices")).unwrap();
        std::os::unix::fs::symlink(&dev, host.device_dir(&a)).unwrap();
        let p1 = t.path().join("proc/101");
        fs::create_dir_all(p1.join("fd")).unwrap();
        fs::write(p1.join("comm"), "Xorg\n").unwrap();
        std::os::unix::fs::symlink("/dev/dri/card0", p1.join("fd/7")).unwrap();
        let p2 = t.path().join("proc/202");
        fs::create_dir_all(p2.join("fd")).unwrap();
        fs::write(p2.join("comm"), "spdk\n").unwrap();
        let real = fs::canonicalize(&dev).unwrap();
        fs::write(
            p2.join("maps"),
            format!("7f00-7f10 rw-s 00000000 00:15 42 {}/resource0\n", real.display()),
        )
        .unwrap();
        fs::create_dir_all(t.path().join("proc/self")).unwrap();
        let h = host.likely_holders(&a);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(
            h.iter()
                .any(|l| l.starts_with("Xorg (pid 101) has /dev/dri/card0 open")),
            "{h:?}"
        );
        assert!(
            h.iter()
                .any(|l| l.starts_with("spdk (pid 202)") && l.contains("resource0 mapped")),
            "{h:?}"
        );
    }

    #[test]
    fn a_blocked_write_is_abandoned_at_the_deadline() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("unbind");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = std::time::Instant::now();
        let r = Host::at(t.path()).write_timed(&fifo, "x", Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(2));
        let Err(WriteError::TimedOut { pid, .. }) = r else {
            panic!("{r:?}");
        };
        // The child is still blocked in its open of the FIFO; a reader lets it finish the write.
        let mut reader = fs::File::open(&fifo).unwrap();
        let mut got = String::new();
        io::Read::read_to_string(&mut reader, &mut got).unwrap();
        assert_eq!(got, "x");
        assert!(pid > 0);
    }

    #[test]
    fn a_write_error_comes_back_with_its_errno() {
        let t = tempfile::tempdir().unwrap();
        let r = Host::at(t.path()).write_timed(&t.path().join("missing/attr"), "1", Duration::from_secs(5));
        match r {
            Err(WriteError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}"),
            other => panic!("{other:?}"),
        }
        let ok = t.path().join("attr");
        fs::write(&ok, "").unwrap();
        Host::at(t.path())
            .write_timed(&ok, "vfio-pci", Duration::from_secs(5))
            .unwrap();
        assert_eq!(fs::read_to_string(&ok).unwrap(), "vfio-pci");
    }
}
